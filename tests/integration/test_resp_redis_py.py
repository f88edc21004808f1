"""redis-py against the RESP server: r.ts() commands under RESP2, RESP3 and redis-py's default.

redis-py 8 speaks RESP3 by default (``protocol=None``) and then converts replies to its
legacy shapes; ``protocol=3`` returns RESP3's native maps; ``protocol=2`` parses RESP2.
"""

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.protocols.resp.resp_server import RespServer

PROTOCOLS = [2, 3, None]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RespServer(tmp_path_factory.mktemp("resp") / "data") as srv:
        yield srv


@pytest.fixture(params=PROTOCOLS, ids=["resp2", "resp3", "default"])
def r(request, server):
    kwargs = {} if request.param is None else {"protocol": request.param}
    client = redis.Redis(port=server.port, decode_responses=True, **kwargs)
    client.flushall()
    yield client
    client.close()


def proto(r):
    return r.connection_pool.connection_kwargs.get("protocol")


def test_handshake_and_basics(r):
    assert r.ping() is True
    assert r.echo("hi") == "hi"
    assert r.client_setname("app") is True
    assert r.client_getname() == "app"
    assert r.client_info()["lib-name"] == "redis-py"
    assert r.execute_command("SELECT", 0) in (True, "OK")


def test_write_and_read_series(r):
    ts = r.ts()
    assert ts.create("t", retention_msecs=0, labels={"zone": "A", "kind": "temp"},
                     duplicate_policy="last") is True
    assert ts.add("t", 1000, 1.5) == 1000
    assert ts.add("t", 2000, 0.25) == 2000
    assert ts.add("auto", 1000, 3, labels={"zone": "B", "kind": "temp"}) == 1000
    assert ts.madd([("t", 3000, 2.0), ("auto", 2000, 4.0)]) == [3000, 2000]
    assert ts.incrby("cnt", 5, timestamp=10) == 10
    assert ts.decrby("cnt", 2, timestamp=10) == 10
    assert ts.alter("t", labels={"zone": "A", "kind": "temp", "x": "1"}) is True
    samples = ts.range("t", "-", "+")
    assert [tuple(s) for s in samples] == [(1000, 1.5), (2000, 0.25), (3000, 2.0)]
    assert [tuple(s) for s in ts.revrange("t", "-", "+", count=1)] == [(3000, 2.0)]
    agg = ts.range("t", 0, 4000, aggregation_type="avg", bucket_size_msec=2000)
    assert [tuple(s) for s in agg] == [(0, 1.5), (2000, 1.125)]
    assert tuple(ts.get("t")) == (3000, 2.0)
    assert tuple(ts.get("cnt")) == (10, 3.0)
    assert ts.delete("t", 2000, 2000) == 1
    assert ts.queryindex(["kind=temp"]) in (["auto", "t"], {"auto", "t"})


def test_info(r):
    ts = r.ts()
    ts.create("src", labels={"a": "1"}, retention_msecs=60_000, duplicate_policy="max")
    ts.create("dst")
    assert ts.createrule("src", "dst", "max", 10) is True
    ts.madd([("src", 1, 1.0), ("src", 5, 7.0), ("src", 12, 2.0)])
    info = ts.info("src")
    if proto(r) == 3:  # redis-py leaves RESP3's map as it is
        assert info["totalSamples"] == 3 and info["labels"] == {"a": "1"}
        assert info["rules"] == {"dst": [10, "MAX", 0]}
        assert info["duplicatePolicy"] == "max"
    else:
        assert info.total_samples == 3
        assert info.first_timestamp == 1 and info.last_timestamp == 12
        assert info.retention_msecs == 60_000
        assert info.labels == {"a": "1"}
        assert info.duplicate_policy == "max"
        assert info.chunk_size == 4096
        assert info.rules in ([["dst", 10, "MAX", 0]], {"dst": [10, "MAX", 0]})
    assert [tuple(s) for s in ts.range("dst", "-", "+")] == [(0, 7.0)]
    assert ts.deleterule("src", "dst") is True


def test_mrange_mget_with_labels(r):
    ts = r.ts()
    ts.create("a", labels={"zone": "A", "kind": "t"})
    ts.create("b", labels={"zone": "B", "kind": "t"})
    ts.madd([("a", 1, 1.0), ("a", 2, 2.0), ("b", 1, 10.0)])
    got = ts.mrange("-", "+", ["kind=t"], with_labels=True)
    mget = ts.mget(["kind=t"], with_labels=True)
    agg = ts.mrange("-", "+", ["zone=A"], aggregation_type="sum", bucket_size_msec=10)
    grouped = ts.mrange("-", "+", ["kind=t"], groupby="kind", reduce="max")
    if proto(r) == 3:
        assert got == {"a": [{"zone": "A", "kind": "t"}, {"aggregators": []},
                             [[1, 1.0], [2, 2.0]]],
                       "b": [{"zone": "B", "kind": "t"}, {"aggregators": []}, [[1, 10.0]]]}
        assert mget == {"a": [{"zone": "A", "kind": "t"}, [2, 2.0]],
                        "b": [{"zone": "B", "kind": "t"}, [1, 10.0]]}
        assert agg == {"a": [{}, {"aggregators": ["sum"]}, [[0, 3.0]]]}
        assert grouped["kind=t"][-1] == [[1, 10.0], [2, 2.0]]
        assert grouped["kind=t"][2] == {"sources": ["a", "b"]}
    else:
        assert got == [{"a": [{"zone": "A", "kind": "t"}, [(1, 1.0), (2, 2.0)]]},
                       {"b": [{"zone": "B", "kind": "t"}, [(1, 10.0)]]}]
        assert mget == [{"a": [{"zone": "A", "kind": "t"}, 2, 2.0]},
                        {"b": [{"zone": "B", "kind": "t"}, 1, 10.0]}]
        assert agg == [{"a": [{}, [(0, 3.0)]]}]
        assert grouped == [{"kind=t": [{}, [(1, 10.0), (2, 2.0)]]}]
    rev = ts.mrevrange("-", "+", ["zone=A"], count=1)
    assert rev == ({"a": [{}, {"aggregators": []}, [[2, 2.0]]]} if proto(r) == 3
                   else [{"a": [{}, [(2, 2.0)]]}])


def test_pipelines(r):
    for transaction in (True, False):
        pipe = r.ts().pipeline(transaction=transaction)
        base = 1000 if transaction else 5000
        for i in range(200):
            pipe.add(f"p{i % 3}", base + i, i)
        pipe.get("p0")
        res = pipe.execute()
        assert res[:200] == [base + i for i in range(200)]
        assert tuple(res[200]) == (base + 198, 198.0)
    pipe = r.pipeline()  # a plain pipeline through r.ts(), like the IoT example
    pipe.ts().add("p0", 9000, 1)
    pipe.ts().add("p0", 9000, 1)  # BLOCK duplicate: the error is returned, not raised
    res = pipe.execute(raise_on_error=False)
    assert res[0] == 9000 and isinstance(res[1], redis.ResponseError)


def test_errors(r):
    ts = r.ts()
    with pytest.raises(redis.ResponseError, match="^TSDB: invalid timestamp$"):
        r.execute_command("TS.ADD", "k", "abc", 1)
    with pytest.raises(redis.ResponseError, match="TSDB: the key does not exist"):
        ts.range("missing", "-", "+")
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'ts.add'"):
        r.execute_command("TS.ADD", "k")
    with pytest.raises(redis.ResponseError, match="unknown command 'FOO'"):
        r.execute_command("FOO", "a")
    ts.create("k")
    with pytest.raises(redis.ResponseError, match="TSDB: key already exists"):
        ts.create("k")
    res = ts.madd([("k", 1, 1), ("nope", 1, 1)])
    assert res[0] == 1 and isinstance(res[1], redis.ResponseError)
    assert "the key is not a TSDB key" in str(res[1])


def test_generic_key_commands(r):
    r.ts().add("s:1", 1, 1)
    r.ts().add("s:2", 1, 1)
    r.ts().add("x", 1, 1)
    assert sorted(r.keys("s:*")) == ["s:1", "s:2"]
    assert sorted(r.scan_iter(match="s:*")) == ["s:1", "s:2"]
    assert r.exists("s:1", "x", "nope") == 2
    assert r.type("x") == "TSDB-TYPE"
    assert r.dbsize() == 3
    assert r.delete("s:1", "nope") == 1
    assert r.unlink("s:2") == 1
    assert r.keys() == ["x"]
    assert "redis_version" in r.info()
    assert r.info("keyspace")["db0"]["keys"] == 1


def test_transaction_is_atomic_and_durable(r, server):
    with r.pipeline(transaction=True) as pipe:
        pipe.ts().create("tx", labels={"a": "b"})
        pipe.ts().madd([("tx", 1, 1.0), ("tx", 2, 2.0)])
        pipe.ts().range("tx", "-", "+")
        res = pipe.execute()
    assert res[0] is True and res[1] == [1, 2]
    assert [tuple(s) for s in res[2]] == [(1, 1.0), (2, 2.0)]
    assert server.db.range("tx", "-", "+") == [(1, 1.0), (2, 2.0)]


def test_password(tmp_path):
    with RespServer(tmp_path / "pw", password="s3cret") as srv:
        no_retry = Retry(NoBackoff(), 0)  # redis-py retries auth failures by default
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=srv.port, protocol=2, retry=no_retry).ping()
        for p in (2, 3):
            r = redis.Redis(port=srv.port, password="s3cret", protocol=p)
            assert r.ping() is True
            assert r.ts().add("k", p, 1) == p
            r.close()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=srv.port, password="wrong", protocol=3, retry=no_retry).ping()
