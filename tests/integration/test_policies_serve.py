"""``sensorium serve`` with [[policies]] in its config: series written over HTTP get tiers,
and aggregated reads use them, across a restart."""

import time

import httpx

from sensorium import cli

CONFIG = """
[[policies]]
name = "temperatures"
filter = ["type=temperature"]
preset = "seed"
"""
MINUTE = 60_000


def test_config_policies_tier_new_sensors(serve_factory, tmp_path):
    config = tmp_path / "sensorium.toml"
    config.write_text(CONFIG)
    data = tmp_path / "data"
    srv = serve_factory(data, resp=False, args=("--config", str(config)))
    now = int(time.time() * 1000) // MINUTE * MINUTE
    readings = [{"sensor_id": f"t{i}", "timestamp": now - 30 * MINUTE + j * 10_000,
                 "value": 20.0 + i + (j % 6), "labels": {"type": "temperature"}}
                for i in range(3) for j in range(180)]
    readings.append({"sensor_id": "h0", "timestamp": now, "value": 50.0,
                     "labels": {"type": "humidity"}})
    assert httpx.post(srv.http_url + "/api/ingest/batch", json=readings).is_success
    keys = httpx.get(srv.http_url + "/api/series").json()["keys"]
    assert {"t0:1m", "t0:1h", "t0:1d"} <= set(keys) and "h0:1m" not in keys
    query = {"filter": "type=temperature", "from": now - 3600_000, "to": now,
             "aggregation": "avg", "bucket": "1h"}
    first = httpx.get(srv.http_url + "/api/aggregate", params=query).json()
    assert [s["sources"][-1]["key"] for s in first["series"]] == ["t0:1h", "t1:1h", "t2:1h"]
    srv.stop()
    srv = serve_factory(data, resp=False, args=("--config", str(config)))
    assert httpx.get(srv.http_url + "/api/aggregate", params=query).json() == first
    policies = httpx.get(srv.http_url + "/api/policies").json()["policies"]
    assert [p["name"] for p in policies] == ["temperatures"]


def test_policy_command_against_a_server(serve_factory, tmp_path, capsys):
    srv = serve_factory(tmp_path / "data", resp=False)
    assert httpx.post(srv.http_url + "/api/series",
                      json={"key": "t0", "labels": {"type": "temperature"}}).is_success
    policy = tmp_path / "p.json"
    policy.write_text('{"name": "temps", "filter": ["type=temperature"], "preset": "seed"}')
    cli.main(["policy", "set", str(policy), "--url", srv.http_url])
    assert '"tiers_created": 3' in capsys.readouterr().out
    cli.main(["policy", "list", "--url", srv.http_url])
    assert '"temps"' in capsys.readouterr().out
    cli.main(["policy", "drop", "temps", "--delete-tiers", "--url", srv.http_url])
    assert httpx.get(srv.http_url + "/api/series").json()["keys"] == ["t0"]
