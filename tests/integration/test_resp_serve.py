"""The RESP front end inside ``sensorium serve`` (a real subprocess): redis-py writes, the
process is killed with SIGKILL, and after a restart every acknowledged sample is there."""

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def _client(srv, **kwargs):
    if srv.resp_port is None:
        pytest.skip("sensorium serve did not announce a RESP port")
    return redis.Redis(port=srv.resp_port, decode_responses=True, **kwargs)


def test_acknowledged_writes_survive_kill_9(serve_factory, tmp_path):
    data = tmp_path / "data"
    srv = serve_factory(data)
    r = _client(srv)
    r.ts().create("dev:1", labels={"zone": "A"})
    pipe = r.ts().pipeline(transaction=False)
    for i in range(5000):
        pipe.add(f"dev:{i % 5}", 1_000 + i, i / 4)
    assert pipe.execute() == [1_000 + i for i in range(5000)]
    assert r.ts().madd([("dev:1", 10_000, 1.0), ("dev:2", 10_000, 2.0)]) == [10_000, 10_000]
    r.close()
    srv.kill()  # no shutdown, no checkpoint: only the log remains

    srv = serve_factory(data)
    r = _client(srv, protocol=2)
    assert r.dbsize() == 5
    assert len(r.ts().range("dev:1", "-", "+")) == 1001
    assert r.ts().get("dev:2") == (10_000, 2.0)
    assert r.ts().info("dev:1").labels == {"zone": "A"}
    assert r.ts().mget(["zone=A"]) == [{"dev:1": [{}, 10_000, 1.0]}]
    r.close()
    srv.stop()


def test_token_is_the_resp_password(serve_factory, tmp_path):
    srv = serve_factory(tmp_path / "data", config={"server": {"token": "t0k"}})
    with pytest.raises(redis.AuthenticationError):
        _client(srv, protocol=2, retry=Retry(NoBackoff(), 0)).ping()
    r = _client(srv, password="t0k")
    assert r.ping() is True
    r.close()
    srv.stop()
