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
    meta = reg.meta
    keys: list[str] = []
    found: dict[str, tuple[list[int], list[str]]] = {}  # label → (positions, values)
    for pos, sid in enumerate(sids.tolist()):  # one pass over the series' labels
        m = meta[sid]
        assert m is not None
        keys.append(m.key)
        for name, value in m.labels.items():
            if value:
                got = found.get(name)
                if got is None:
                    found[name] = ([pos], [value])
                else:
                    got[0].append(pos)
                    got[1].append(value)
    names = sorted(found)
    labels, values = {}, {}
    for name in names:
        positions, raw = found[name]
        lookup: dict[str, int] = {}
        codes = [lookup.setdefault(v, len(lookup)) for v in raw]
        column = np.full(len(sids), -1, np.int32)
        column[positions] = codes
        labels[name] = column
        values[name] = pa.array(list(lookup), pa.string())
    return Catalog(sids, pa.array(keys, pa.string()), labels, values, _column_names(names),
                   _tiers(engine, sids))


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
    """Streams read by rules, by bucket size, one per root raw series (vectorised)."""
    rules = list(engine.rules.values())
    if not rules:
        return {}
    reg = engine.registry
    cols = np.array([(r.source, r.dest, r.stream, r.bucket_ms, r.align_ms) for r in rules],
                    np.int64).reshape(-1, 5)
    src, dest, stream, bucket, align = cols.T
    parent = np.full(len(reg.meta), -1, np.int64)
    parent[dest] = src
    root = src.copy()
    while (up := parent[root] >= 0).any():  # a tier of a tier: follow the chain to raw data
        root[up] = parent[root[up]]
    shard = reg.shard[src].astype(np.int64)
    # The longest retention of the rules reading a stream (0 = forever wins).
    ret = reg.retention_ms[dest].astype(np.int64)
    ret = np.where(ret <= 0, np.iinfo(np.int64).max, ret)
    order = np.lexsort((ret, stream, shard))
    same = np.append((shard[order][1:] != shard[order][:-1])
                     | (stream[order][1:] != stream[order][:-1]), True)
    longest = np.empty(len(rules), np.int64)
    group = np.cumsum(np.concatenate(([0], same[:-1])))
    longest[order] = ret[order][same][group]
    longest = np.where(longest == np.iinfo(np.int64).max, 0, longest)
    # One stream per (root, bucket): aligned to 0 first, then the lowest id.
    pick = np.lexsort((stream, align % bucket != 0, root, bucket))
    first = np.append(True, (bucket[pick][1:] != bucket[pick][:-1])
                      | (root[pick][1:] != root[pick][:-1]))
    pick = pick[first & np.isin(root[pick], raw)]
    out = {}
    for b in np.unique(bucket[pick]).tolist():
        mine = pick[bucket[pick] == b]  # sorted by root
        out[tier_name(b)] = TierStreams(b, np.searchsorted(raw, root[mine]), shard[mine],
                                        stream[mine], longest[mine])
    return out
