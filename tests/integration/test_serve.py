"""``sensorium serve`` as a process: startup, shutdown, restarts, crashes, configuration."""

import signal
import subprocess
import sys
import threading

import httpx
import pytest
import redis

from tests.integration.conftest import ServeProcess


def write_json(srv, key, ts, value):
    r = httpx.post(f"{srv.http_url}/api/ingest/batch",
                   json=[{"sensor_id": key, "timestamp": ts, "value": value}])
    return r.status_code == 200


def samples(srv, key):
    r = httpx.get(f"{srv.http_url}/api/series/{key}/range")
    return [tuple(x) for x in r.json()["samples"]] if r.status_code == 200 else r.status_code


def test_announces_addresses_and_serves(serve_process):
    assert serve_process.lines[0].startswith("sensorium serving ")
    assert serve_process.http_url.startswith("http://127.0.0.1:")
    assert serve_process.lines[-1] == "ready"
    assert httpx.get(f"{serve_process.http_url}/ping").status_code == 204
    assert serve_process.resp_port is not None
    with redis.Redis(port=serve_process.resp_port) as r:  # one database behind both
        r.ts().add("via_resp", 5, 1.25)
        assert samples(serve_process, "via_resp") == [(5, 1.25)]
        assert write_json(serve_process, "via_http", 6, 2.5)
        assert r.ts().range("via_http", "-", "+") == [(6, 2.5)]


def test_sigterm_then_restart_keeps_acknowledged_data(serve_factory, tmp_path):
    data = tmp_path / "data"
    config = {"server": {"max_body_bytes": 1000}, "database": {"duplicate_policy": "last"}}
    srv = serve_factory(data, resp=False, config=config)
    assert write_json(srv, "a", 1, 1.0)
    assert write_json(srv, "a", 1, 1.5)  # config: LAST overwrites instead of refusing
    r = httpx.post(f"{srv.http_url}/api/v2/write", content=b"m,t=x v=2 2",
                   params={"precision": "ms"})
    assert r.status_code == 204
    big = httpx.post(f"{srv.http_url}/api/v2/write", content=b"m v=1\n" * 200)
    assert big.status_code == 413  # config: max_body_bytes
    assert srv.stop(signal.SIGTERM) == 0
    assert srv.lines[-1] == "stopped"
    assert list((data / "shard-000" / "blocks").glob("raw-*.parquet"))  # checkpointed
    srv = serve_factory(data, resp=False)
    assert samples(srv, "a") == [(1, 1.5)]
    assert samples(srv, "m,t=x:v") == [(2, 2.0)]
    labels = httpx.get(f"{srv.http_url}/api/series/m,t=x:v").json()["labels"]
    assert labels == {"t": "x", "_measurement": "m", "_field": "v"}
    assert srv.stop(signal.SIGINT) == 0  # Ctrl+C stops as cleanly
    assert srv.lines[-1] == "stopped"


def test_kill_9_during_writes_keeps_every_acknowledged_write(serve_factory, tmp_path):
    data = tmp_path / "data"
    srv = serve_factory(data, resp=False)
    acked: list[int] = []
    stop = threading.Event()

    def writer():
        with httpx.Client(base_url=srv.http_url, timeout=5) as client:
            i = 0
            while not stop.is_set():
                body = "\n".join(f"crash,w=1 v={i + j} {i + j}" for j in range(100))
                try:
                    r = client.post("/write", params={"precision": "ms"}, content=body.encode())
                except httpx.HTTPError:
                    return
                if r.status_code == 204:
                    acked.extend(range(i, i + 100))
                i += 100

    thread = threading.Thread(target=writer)
    thread.start()
    while len(acked) < 2000 and thread.is_alive():
        thread.join(0.05)
    assert len(acked) >= 2000, "the writer stopped early"
    srv.kill()
    stop.set()
    thread.join()
    srv = serve_factory(data, resp=False)
    got = samples(srv, "crash,w=1:v")
    assert {t for t, _ in got} >= set(acked)
    assert all(v == t for t, v in got)


def test_the_token_guards_resp_too(secured_serve_process):
    from tests.integration.conftest import SECURED_TOKEN
    with redis.Redis(port=secured_serve_process.resp_port) as r:
        with pytest.raises(redis.AuthenticationError):
            r.ping()
    with redis.Redis(port=secured_serve_process.resp_port, password=SECURED_TOKEN) as r:
        assert r.ping()


def test_second_server_on_the_same_directory_refuses(serve_process):
    with pytest.raises(RuntimeError, match="already open"):
        ServeProcess(serve_process.data_dir, ["--no-resp"], None)


def test_bad_config_exits_with_a_message(tmp_path):
    cfg = tmp_path / "bad.toml"  # more cases in tests/test_server.py, in process
    cfg.write_text("[database]\nfsync = 'sometimes'\n")
    done = subprocess.run([sys.executable, "-m", "sensorium.cli", "serve", "--data-dir",
                           str(tmp_path / "data"), "--http-port", "0", "--no-resp",
                           "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "fsync" in done.stderr and "Traceback" not in done.stderr


def test_port_in_use_exits_with_a_message(serve_process, tmp_path):
    port = serve_process.http_url.rsplit(":", 1)[1]
    done = subprocess.run([sys.executable, "-m", "sensorium.cli", "serve", "--data-dir",
                           str(tmp_path / "data"), "--http-port", port, "--no-resp"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "in use" in done.stderr and "Traceback" not in done.stderr
