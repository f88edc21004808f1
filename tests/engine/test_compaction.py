"""Block merging and retention: merged data reads the same; retention reclaims space."""

import os

import numpy as np

import sensorium
from sensorium.engine import compaction


def _blocks(db):
    return db.engine.shards[0].raw.blocks


def test_plan_picks_smallest_adjacent_run():
    class B:
        def __init__(self, rows):
            self.rows = rows
    assert compaction.plan([B(1)] * compaction.MAX_BLOCKS) is None
    sizes = [100, 90, 5, 5, 5, 5, 80]
    assert compaction.plan([B(r) for r in sizes]) == (2, 6)


def test_merge_keeps_newest_values_and_drops_deleted(tmp_path):
    path = str(tmp_path / "d")
    with sensorium.open(path, background=False) as db:
        for round_ in range(compaction.MAX_BLOCKS + 2):
            for t in range(50):
                db.add("s", t, float(round_ * 100 + t), on_duplicate="last")
            db.add("gone", round_, 1.0)
            db.checkpoint()
        db.delete("s", 0, 9)
        db.delete_series("gone")
        db.checkpoint()
        before = db.range("s", "-", "+")
        while db.engine.maintain():
            pass
        assert len(_blocks(db)) <= compaction.MAX_BLOCKS
        assert db.range("s", "-", "+") == before
        assert before[0] == (10, float((compaction.MAX_BLOCKS + 1) * 100 + 10))
    with sensorium.open(path, background=False) as db:
        assert db.range("s", "-", "+") == before
        names = set(os.listdir(os.path.join(path, "shard-000", "blocks")))
        assert names == {os.path.basename(b.path) for b in _blocks(db)} | {
            os.path.basename(b.path) for b in db.engine.shards[0].rollup.blocks}


def test_retention_drops_whole_blocks(tmp_path):
    with sensorium.open(str(tmp_path / "d"), background=False) as db:
        db.create("r", retention_msecs=1000)
        for start in (0, 10_000, 20_000):
            keys = np.array(["r"] * 100, dtype=object)
            db.madd(keys, np.arange(start, start + 100), np.ones(100))
            db.checkpoint()
        assert len(_blocks(db)) == 3
        db.engine.maintain()
        assert len(_blocks(db)) == 1
        assert len(db.range("r", "-", "+")) == 100
