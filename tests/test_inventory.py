"""``inventory``: rows per table and tier from storage metadata, in memory and in blocks."""

import numpy as np

import sensorium
from sensorium.inventory import RAW_SAMPLE_BYTES, inventory


def test_counts_in_memory_then_in_blocks(tmp_path):
    with sensorium.open(str(tmp_path / "db"), background=False) as db:
        with db.batch():
            for key in ("a", "b"):
                db.create(key)
                for agg in ("avg", "max"):  # two rules, one stream of 1 min buckets
                    db.create(f"{key}:{agg}")
                    db.createrule(key, f"{key}:{agg}", agg, 60_000)
                db.create(f"{key}:h")
                db.createrule(key, f"{key}:h", "min", 3_600_000)
        ts = np.arange(0, 7_200_000, 1000)  # 2 hours at 1 s
        for key in ("a", "b"):
            db.madd([key] * len(ts), ts, np.round(np.sin(ts / 1e6), 2))
        inv = inventory(db)
        assert inv["series"] == {"total": 8, "raw": 2, "tiers": 6} and inv["rules"] == 6
        assert inv["raw"]["samples"] == inv["raw"]["in_memory"] == 2 * 7200
        assert inv["raw"]["in_blocks"] == 0 and inv["raw"]["bytes_per_sample"] is None
        minute, hour = inv["tiers"]
        # 119 closed minute buckets per source (the 120th is open, in memory only)
        assert (minute["bucket_ms"], minute["aggregators"], minute["series"]) == (
            60_000, ["avg", "max"], 4)
        assert minute["buckets"] == 2 * 119 and minute["samples"] == 4 * 119
        assert (hour["bucket_ms"], hour["buckets"], hour["samples"]) == (3_600_000, 2, 2)

        db.checkpoint()
        after = inventory(db)
        raw = after["raw"]
        assert raw["in_blocks"] == 2 * 7200 and raw["in_memory"] == 0
        assert raw["block_bytes"] == after["disk"]["raw_block_bytes"] > 0
        ratio = RAW_SAMPLE_BYTES * raw["in_blocks"] / raw["block_bytes"]
        assert raw["compression_ratio"] == round(ratio, 1)
        assert [t["buckets"] for t in after["tiers"]] == [2 * 119, 2]
        assert after["tiers"][0]["block_bytes"] > 0
        assert after["disk"]["total_bytes"] > after["disk"]["rollup_block_bytes"] > 0
