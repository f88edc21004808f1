"""Tier policies: matching series get chained tiers, kept across restarts, updated in place."""

import shutil

import numpy as np
import pytest

import sensorium
from sensorium.engine.policies import PRESETS, parse_policy
from sensorium.errors import InvalidArgument

M, H, D = 60_000, 3_600_000, 86_400_000
T0 = 1_700_000_000_000 // D * D
SMALL = {"name": "temps", "filter": ["type=temperature"], "raw_retention": "2d",
         "tiers": [{"name": "1m", "bucket": "1min", "retention": "30d",
                    "aggregators": ["avg", "max"]},
                   {"name": "1h", "bucket": "1h", "aggregators": ["max"]}]}


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "db")


def _write(db, keys, hours=3, step=10_000, start=T0):
    ts = start + np.arange(int(hours * H) // step) * step
    values = np.round(np.sin(np.arange(len(ts)) / 50) * 10 + 20, 2)
    for key in keys:
        for at in range(0, len(ts), 360):
            db.madd([key] * len(ts[at:at + 360]), ts[at:at + 360], values[at:at + 360])
    return ts, values


def test_parse_checks_every_field():
    policy = parse_policy({"name": "p", "filter": "type=t", "preset": "seed"})
    assert [t.name for t in policy.tiers] == ["1m", "1h", "1d"]
    assert policy.raw_retention_ms == 7 * D and policy.tiers[2].retention_ms == 0
    assert len(PRESETS["seed"]["tiers"]) == 3
    bad = [
        ({"name": "p", "filter": ["type=t"], "tiers": []}, "tiers must be"),
        ({"name": "p", "filter": [], "tiers": [{"bucket": "1m"}]}, "filter must be"),
        ({"name": "p", "filter": ["type!=t"], "tiers": [{"bucket": "1min"}]}, "matcher"),
        ({"name": "p", "filter": ["t=1"], "tiers": [{"bucket": "1h"}, {"bucket": "90min"}]},
         "larger multiple"),
        ({"name": "p", "filter": ["t=1"], "tiers": [{"bucket": "soon"}]}, "tiers\\[0\\].bucket"),
        ({"name": "p", "filter": ["t=1"], "tiers": [{"bucket": "1h", "aggregators": ["mean"]}]},
         "unknown aggregator"),
        ({"name": "p", "filter": ["t=1"], "tiers": [{"bucket": "1h", "every": 1}]},
         "unknown key"),
        ({"name": "p", "filter": ["t=1"], "preset": "fast"}, "unknown preset"),
        ({"name": "p", "filter": ["t=1"], "tiers": [{"bucket": "1min"},
                                                    {"bucket": "1h", "retention": "1y"}]},
         "keep at least as long"),
        ({"name": "a:b", "filter": ["t=1"], "preset": "seed"}, "name must be"),
    ]
    for doc, message in bad:
        with pytest.raises(InvalidArgument, match=message):
            parse_policy(doc)


def test_matching_series_get_chained_tiers_others_do_not(path):
    with sensorium.open(path) as db:
        db.set_policy(SMALL)
        db.create_many(["a", "b"], [{"type": "temperature"}, {"type": "humidity"}])
        db.create("c", labels={"type": "temperature"}, retention_msecs=5)
        db.madd(["implicit"], [T0], [1.0])  # created without labels: no policy matches
        assert db.keys() == ["a", "a:1h", "a:1m", "b", "c", "c:1h", "c:1m", "implicit"]
        assert db.describe("a")["retention_msecs"] == 2 * D
        assert db.describe("c")["retention_msecs"] == 2 * D  # the policy's raw retention
        assert db.describe("a:1m")["labels"] == {"__tier__": "1m", "__source__": "a"}
        assert db.describe("a:1h")["source_key"] == "a:1m"
        assert db.describe("a:1m")["retention_msecs"] == 30 * D
        ts, values = _write(db, ["a"])
        got = db.aggregate(["a"], 0, "+", "max", H)[0]
        assert [s["key"] for s in got["sources"]] == ["a:1h"]
        want = values.reshape(3, -1).max(axis=1)
        assert got["values"].tolist() == want.tolist()


def test_policies_and_their_tiers_survive_replay_and_checkpoints(path, tmp_path):
    with sensorium.open(path, background=False) as db:
        db.set_policy(SMALL)
        db.create("a", labels={"type": "temperature"})
        crashed = str(tmp_path / "crashed")
        shutil.copytree(path, crashed)  # as kill -9 leaves it: only the log has the policy
    for reopen, where in enumerate([crashed, crashed, path]):
        with sensorium.open(where) as db:
            assert [p["name"] for p in db.policies()] == ["temps"]
            key = f"new{reopen}"
            db.create(key, labels={"type": "temperature"})
            assert db.exists(f"{key}:1h") and db.exists("a:1m")


def test_adding_a_tier_backfills_and_retention_changes_in_place(path):
    with sensorium.open(path) as db:
        db.set_policy(SMALL)
        db.create_many(["a", "b"], [{"type": "temperature"}] * 2)
        ts, values = _write(db, ["a", "b"])
        seen = []
        changed = {**SMALL, "tiers": [
            {"name": "1m", "bucket": "1min", "retention": "60d", "aggregators": ["avg", "max"]},
            {"name": "15m", "bucket": "15min", "aggregators": ["avg", "p90"]},
            {"name": "1h", "bucket": "1h", "aggregators": ["max"]}]}
        report = db.set_policy(changed, progress=lambda done, total: seen.append((done, total)))
        assert report["series"] == 2 and report["tiers_created"] == 4  # 15m and rebuilt 1h
        assert report["tiers_rebuilt_or_removed"] == ["1h"]
        assert seen == [(2, 2)]
        assert db.describe("a:1m")["retention_msecs"] == 60 * D
        assert db.describe("a:15m")["source_key"] == "a:1m"
        assert db.describe("a:1h")["source_key"] == "a:15m"
        # the new tier holds every old bucket (backfilled), exactly; the newest bucket too
        # (LATEST adds what the 1-minute tier's open bucket holds)
        quarter = db.range("a:15m", "-", "+", latest=True)
        assert [v for _, v in quarter] == pytest.approx(values.reshape(12, -1).mean(axis=1))
        assert db.aggregate(["a"], 0, "+", "avg", 15 * M)[0]["values"].tolist() == \
            pytest.approx(values.reshape(12, -1).mean(axis=1))
        hour = db.aggregate(["b"], 0, "+", "max", H)[0]
        assert [s["key"] for s in hour["sources"]] == ["b:1h"]
        assert hour["values"].tolist() == values.reshape(3, -1).max(axis=1).tolist()
        # a percentile in the list: the tier keeps sketches, also after a restart
        p90 = db.range("a:15m", "-", "+", aggregation_type="p90", bucket_size_msec=15 * M,
                       latest=True)
        exact = np.percentile(values.reshape(12, -1), 90, axis=1)
        assert [v for _, v in p90] == pytest.approx(exact, rel=0.02)
    with sensorium.open(path) as db:
        again = db.range("a:15m", "-", "+", aggregation_type="p90", bucket_size_msec=15 * M,
                         latest=True)
        assert again == p90


def test_drop_policy_keeps_or_deletes_tiers(path):
    with sensorium.open(path) as db:
        db.set_policy(SMALL)
        db.set_policy({**SMALL, "name": "hums", "filter": ["type=humidity"]})
        db.create_many(["t", "h"], [{"type": "temperature"}, {"type": "humidity"}])
        db.drop_policy("temps")
        assert db.exists("t:1m")
        db.create("t2", labels={"type": "temperature"})
        assert not db.exists("t2:1m")
        db.drop_policy("hums", delete_tiers=True)
        assert db.keys() == ["h", "t", "t2", "t:1h", "t:1m"]
        with pytest.raises(InvalidArgument, match="no policy"):
            db.drop_policy("hums")


def test_first_matching_policy_wins_and_tiers_are_never_governed(path):
    with sensorium.open(path) as db:
        db.set_policy({**SMALL, "name": "first", "filter": ["zone=A"]})
        db.set_policy({**SMALL, "name": "second", "filter": ["__tier__=1m"]})
        db.create("s", labels={"type": "temperature", "zone": "A"})
        assert db.exists("s:1m") and not db.exists("s:1m:1m")


def test_reopening_finishes_an_interrupted_application(path):
    with sensorium.open(path) as db:
        db.set_policy(SMALL)
        db.create("a", labels={"type": "temperature"})
        _write(db, ["a"], hours=1)
        db.delete_series("a:1h")  # as if a crash had stopped the policy before this tier
    with sensorium.open(path) as db:
        assert db.exists("a:1h")
        assert db.range("a:1h", "-", "+", latest=True) == [
            (T0, max(v for _, v in db.range("a", "-", "+")))]


def test_tier_retention_hides_then_reclaims_old_buckets(path):
    policy = {"name": "p", "filter": ["type=temperature"], "raw_retention": "1h",
              "tiers": [{"name": "1m", "bucket": "1min", "retention": "2h"},
                        {"name": "1h", "bucket": "1h"}]}
    with sensorium.open(path, background=False) as db:
        db.set_policy(policy)
        db.create("a", labels={"type": "temperature"})
        for part in range(8):  # 8 blocks of 45 min: merges (above 6 blocks) drop hidden rows
            _write(db, ["a"], hours=0.75, start=T0 + part * 45 * M)
            db.checkpoint()
        minutes = db.range("a:1m", "-", "+")
        assert minutes[0][0] >= T0 + 4 * H - 2 * M and len(minutes) <= 2 * 60 + 2
        assert len(db.range("a:1h", "-", "+", latest=True)) == 6  # kept forever
        while db.engine.maintain():
            pass
        shard = db.engine.shards[0]
        stream = db.engine.rules[db.engine.registry.sid("a:1m")].stream
        stored = shard.read_states(np.array([stream], np.int32), 0, 2**62)
        # the merge dropped the minutes that retention hides from the blocks it rewrote
        # (at least one block's worth); blocks not merged yet keep theirs until they are
        assert len(stored) <= 6 * 60 - 45
        assert db.range("a:1m", "-", "+") == minutes
