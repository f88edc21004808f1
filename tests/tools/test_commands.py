"""``sensorium generate``, ``stats`` and ``bench`` end to end on an embedded database."""

import json
import sys

import pytest

import sensorium
from sensorium import cli
from sensorium.tools.generate import fleet


@pytest.fixture
def tiered(tmp_path):
    """A directory with 5 sensors whose raw series feed 1 h and 1 d avg tiers."""
    path = str(tmp_path / "db")
    f = fleet(5)
    with sensorium.open(path) as db, db.batch():
        db.create_many(f.keys, f.labels)
        for key in f.keys:
            for name, bucket_ms in (("1h", 3_600_000), ("1d", 86_400_000)):
                db.create(f"{key}:{name}", labels={"tier": name})
                db.createrule(key, f"{key}:{name}", "avg", bucket_ms)
    return path


def test_generate_stats_bench(tiered, capsys):
    cli.main(["generate", "--data-dir", tiered, "--sensors", "5", "--days", "45",
              "--interval", "120", "--seed", "4"])
    captured = capsys.readouterr()
    assert "generate [" in captured.err and "100%" in captured.err  # the progress bar
    line = captured.out.splitlines()[0]
    written = int(line.split(" samples written")[0].split()[-1].replace(",", ""))
    assert 0.9 * 45 * 720 * 5 < written < 45 * 720 * 5  # dropouts take a little
    assert "time: create series" in captured.out and "close" in captured.out

    cli.main(["stats", "--data-dir", tiered, "--json"])
    stats = json.loads(capsys.readouterr().out)
    assert stats["series"] == {"total": 15, "raw": 5, "tiers": 10}
    assert stats["raw"]["samples"] == stats["raw"]["in_blocks"] == written  # closed: blocks
    assert 0 < stats["raw"]["bytes_per_sample"] < 4
    raw = stats["raw"]
    assert raw["compression_ratio"] == round(16 * raw["in_blocks"] / raw["block_bytes"], 1)
    assert [t["bucket_ms"] for t in stats["tiers"]] == [3_600_000, 86_400_000]
    assert stats["disk"]["total_bytes"] >= stats["disk"]["raw_block_bytes"] > 0
    cli.main(["stats", "--data-dir", tiered])
    text = capsys.readouterr().out
    assert "bytes/sample, compression" in text and "1h  avg" in text

    cli.main(["bench", "--data-dir", tiered, "--repeat", "3", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [r["question"] for r in rows] == [
        "current value", "raw samples, last day", "hourly avg, last week",
        "daily avg, last month", "monthly avg, last year"]
    assert rows[0]["sensor"] == "temp_0001" and rows[0]["rows"] == 1
    assert 600 < rows[1]["rows"] <= 720
    for r, tier, buckets in ((rows[2], ":1h", (168, 169)), (rows[3], ":1d", (30, 31)),
                             (rows[4], ":1d", (2, 3))):
        assert r["tier"].endswith(tier) and r["same"] is True
        assert r["rows"] in buckets and r["raw_ms"] > 0 and r["tier_ms"] > 0
    cli.main(["bench", "--data-dir", tiered, "--repeat", "1", "--sensor", "hum_0001"])
    table = capsys.readouterr().out
    assert table.startswith("sensor hum_0001 (embedded)")
    assert "hourly avg, last week" in table and "hum_0001:1h" in table and "yes" in table


def test_generate_from_a_start_time(tmp_path, capsys):
    path = str(tmp_path / "db")
    cli.main(["generate", "--data-dir", path, "--sensors", "3", "--days", "0.5", "--start",
              "2024-05-01T00:00:00Z", "--spikes", "0", "--dropouts", "0", "--quiet"])
    assert "2,160 samples written" in capsys.readouterr().out
    with sensorium.open(path) as db:
        got = db.range("pres_0001", "-", "+")
    assert got[0][0] == 1_714_521_600_000 and got[-1][0] == 1_714_521_600_000 + 719 * 60_000


@pytest.mark.parametrize("argv, message", [
    (["--sensors", "0"], "must be positive"),
    (["--start", "yesterday"], "--start 'yesterday' is not"),
    (["--target", "resp", "--resp", "localhost:x"], "is not host:port"),
])
def test_generate_errors(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        cli.main(["generate", "--data-dir", str(tmp_path / "db"), "--quiet", *argv])


def test_bench_and_stats_on_an_empty_database(tmp_path, capsys):
    path = str(tmp_path / "db")
    with pytest.raises(SystemExit, match="no series: run sensorium generate first"):
        cli.main(["bench", "--data-dir", path])
    with pytest.raises(SystemExit, match="bench: no series 'nope'"):
        cli.main(["bench", "--data-dir", path, "--sensor", "nope"])
    cli.main(["stats", "--data-dir", path])
    out = capsys.readouterr().out
    assert "series       0" in out and "none yet" in out and "none (no downsampling" in out


def test_mqtt_target_without_paho(monkeypatch, tmp_path):
    for name in ("paho", "paho.mqtt", "paho.mqtt.client"):
        monkeypatch.setitem(sys.modules, name, None)  # as if paho-mqtt were not installed
    with pytest.raises(SystemExit, match="mqtt target needs paho-mqtt: pip install paho-mqtt"):
        cli.main(["generate", "--target", "mqtt", "--quiet"])


def test_policy_set_list_drop(tmp_path, capsys):
    path = str(tmp_path / "db")
    cli.main(["generate", "--data-dir", path, "--sensors", "10", "--days", "1", "--quiet"])
    config = tmp_path / "policies.toml"
    config.write_text('[[policies]]\nname = "temps"\nfilter = ["type=temperature"]\n'
                      'preset = "seed"\n')
    capsys.readouterr()
    cli.main(["policy", "set", str(config), "--data-dir", path])
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["name"] == "temps" and report["tiers_created"] == 3 * report["series"] > 0
    assert "policy temps [" in err and "100%" in err  # the progress bar
    with sensorium.open(path) as db:
        sensor = db.queryindex(["type=temperature"])[0]
        got = db.aggregate([sensor], "-", "+", "avg", 86_400_000)
        assert got[0]["sources"][-1]["key"] == f"{sensor}:1d"
    cli.main(["policy", "list", "--data-dir", path])
    assert [p["name"] for p in json.loads(capsys.readouterr().out)] == ["temps"]
    with pytest.raises(SystemExit, match="no policy named 'other'"):
        cli.main(["policy", "drop", "other", "--data-dir", path])
    cli.main(["policy", "drop", "temps", "--delete-tiers", "--data-dir", path])
    with sensorium.open(path) as db:
        assert not db.exists(f"{sensor}:1m") and db.policies() == []
    with pytest.raises(SystemExit, match="needs a file"):
        cli.main(["policy", "set", "--data-dir", path])
