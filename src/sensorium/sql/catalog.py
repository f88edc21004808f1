"""What SQL sees: the tables, their columns and the series behind them (read path, step 1).

A ``Catalog`` is a snapshot of the series registry and the downsampling rules taken under
the engine lock at the start of a query. It lists

* the raw series (rule destinations are not raw: their data is in the tier tables) with
  their keys and labels, one column per label name;
* the tiers: every rollup stream that a rule reads, grouped by bucket size into tables named
  ``tier_<bucket>`` (``tier_1m``, ``tier_1h``, ``tier_1d``…). A row of a tier belongs to the
  raw series at the root of the stream's chain (raw → 1 min → 1 h): its key and labels.
  When a series has several streams of one bucket size (other alignments, or one built from
  raw data and one from a finer tier), the one aligned to 0, else the lowest id, is shown.

Label names that clash with a fixed column (``key``, ``time``, ``value`` and the tier
columns) or with an earlier label up to case (SQL names ignore case) are shown as
``label_<name>``. Built under the engine lock; immutable after: thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from ..engine.db import Engine

SAMPLE_COLUMNS = ("key", "time", "value")
TIER_COLUMNS = ("key", "time", "count", "sum", "min", "max", "avg", "first", "last",
                "first_time", "last_time", "stddev", "variance", "m2", "closed")
RESERVED = frozenset(SAMPLE_COLUMNS + TIER_COLUMNS)
_UNITS = ((86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms"))


def tier_name(bucket_ms: int) -> str:
    """``tier_1m`` for 60 000 ms: the largest unit that divides the bucket evenly."""
    for size, unit in _UNITS:
        if bucket_ms % size == 0:
            return f"tier_{bucket_ms // size}{unit}"
    raise AssertionError("BUG: unreachable")


@dataclass(frozen=True, slots=True)
class TierStreams:
    """The streams of one tier table, one per series shown (arrays aligned).

    ``series`` indexes ``Catalog.sids``; ``stream`` is a stream id within ``shard``;
    ``retention_ms`` is the longest retention of the rules reading the stream (0: forever).
    """

    bucket_ms: int
    series: np.ndarray
    shard: np.ndarray
    stream: np.ndarray
    retention_ms: np.ndarray


@dataclass(frozen=True, slots=True)
class Catalog:
    """Raw series (``sids`` sorted, ``keys``), label columns and tiers of one query.

    ``labels[name]`` is the label's column: Arrow dictionary indices (int32, -1 = no such
    label) into ``label_values[name]``. ``columns`` maps label names to SQL column names.
    """

    sids: np.ndarray
    keys: pa.Array
    labels: dict[str, np.ndarray]
    label_values: dict[str, pa.Array]
    columns: dict[str, str]
    tiers: dict[str, TierStreams]

    def position(self, sids: np.ndarray) -> np.ndarray:
        """Index in ``sids`` of each given sid (which must be a raw series of the catalog)."""
        return np.searchsorted(self.sids, sids)

    def label_array(self, name: str, positions: np.ndarray) -> pa.Array:
        """Label ``name`` of the series at ``positions`` (repeated per row): a dictionary
        array sharing the catalog's values, NULL where a series lacks the label."""
        codes = self.labels[name][positions]
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0),
                                              self.label_values[name])

    def key_array(self, positions: np.ndarray) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(positions.astype(np.int32)), self.keys)

    def series_table(self) -> pa.Table:
        """One row per raw series: ``key`` and its labels (what label filters run on)."""
        pos = np.arange(len(self.sids))
        cols = {"key": self.keys}
        for name, column in self.columns.items():
            cols[column] = self.label_array(name, pos)
        return pa.table(cols)


def build(engine: Engine) -> Catalog:
    """The catalog of ``engine`` now. Call with the engine lock held."""
    reg = engine.registry
    live = reg.live_sids()
    dests = np.fromiter(engine.rules, np.int64, len(engine.rules))
    sids = live[~np.isin(live, dests)].astype(np.int32)
    metas = [reg.meta[s] for s in sids.tolist()]
    keys = pa.array([m.key for m in metas], pa.string())  # type: ignore[union-attr]
    names = reg.index.label_names(sids.tolist())
    columns = _column_names(names)
    labels, values = {}, {}
    for name in names:
        raw = [m.labels.get(name) or None for m in metas]  # type: ignore[union-attr]
        dictionary = sorted({v for v in raw if v is not None})
        lookup = {v: i for i, v in enumerate(dictionary)}
        labels[name] = np.fromiter((-1 if v is None else lookup[v] for v in raw), np.int32,
                                   len(raw))
        values[name] = pa.array(dictionary, pa.string())
    return Catalog(sids, keys, labels, values, columns, _tiers(engine, sids))


def _column_names(names: list[str]) -> dict[str, str]:
    taken = {c.lower() for c in RESERVED}
    out = {}
    for name in names:
        column = name if name.lower() not in taken else f"label_{name}"
        if column.lower() in taken:
            continue  # label_x clashes too: left out rather than shadowing a column
        taken.add(column.lower())
        out[name] = column
    return out


def _tiers(engine: Engine, raw: np.ndarray) -> dict[str, TierStreams]:
    """Streams read by rules, by bucket size, one per root raw series."""
    rules = engine.rules
    best: dict[tuple[int, int], tuple[int, int, int, int]] = {}  # (root, bucket) → choice
    retention: dict[tuple[int, int], int] = {}  # (shard, stream) → longest retention
    for rule in rules.values():
        root = rule.source
        while root in rules:
            root = rules[root].source
        shard = int(engine.registry.shard[rule.source])
        ret = int(engine.registry.retention_ms[rule.dest])
        old = retention.get((shard, rule.stream))
        retention[(shard, rule.stream)] = 0 if ret <= 0 or old == 0 else max(ret, old or 0)
        choice = (rule.align_ms % rule.bucket_ms != 0, rule.stream, shard, root)
        key = (root, rule.bucket_ms)
        if key not in best or choice < best[key]:
            best[key] = choice
    by_bucket: dict[int, list[tuple[int, int, int]]] = {}
    for (root, bucket), (_, stream, shard, _) in best.items():
        by_bucket.setdefault(bucket, []).append((root, shard, stream))
    out = {}
    shown = set(raw.tolist())
    for bucket in sorted(by_bucket):
        entries = [e for e in by_bucket[bucket] if e[0] in shown]
        entries.sort()
        roots = np.array([e[0] for e in entries], np.int32)
        out[tier_name(bucket)] = TierStreams(
            bucket, np.searchsorted(raw, roots), np.array([e[1] for e in entries], np.int64),
            np.array([e[2] for e in entries], np.int64),
            np.array([retention[(e[1], e[2])] for e in entries], np.int64))
    return out

