"""The engine: composition of registry, shards, rules and background work.

Write path: ``append`` → resolve (head_append) → log (shard WAL) → apply (tables, write
state, rollup streams). Replay after a crash calls the same ``_apply``, so the state it builds
is the state the live path built. Read path: ``samples`` / ``aggregate`` read a series through
its shard's tables (see ``read.py`` for the query front).

Thread-safety: every public method takes the engine lock (an RLock); checkpoints write blocks
outside it. The engine never imports a protocol.
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..config import DatabaseOptions
from ..errors import EngineClosed, InvalidArgument, LockedError, RuleError, SeriesNotFound
from ..model import DuplicatePolicy, parse_aggregator, percentile_of
from . import block, compaction, policies, records
from . import sketch as sk
from .head_append import Resolved, Status, resolve
from .rollup import StreamKey
from .series import EMPTY_TS, NO_POLICY, SeriesRegistry, shard_of_key
from .shard import Shard
from .table import Rows, Table

log = logging.getLogger("sensorium.engine")

LAYOUT_FILE = "sensorium.json"  # shard count and format version, fixed at creation


class Rule(NamedTuple):
    """A downsampling rule: ``dest`` shows ``aggregator`` of its ``stream``'s buckets (a
    tuple: a restart builds 300k of them)."""

    source: int
    dest: int
    aggregator: str
    bucket_ms: int
    align_ms: int
    stream: int
    sketch: bool = False  # its stream keeps sketches (a percentile rule, or a tier listing one)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """Per input row: ``status`` (head_append.Status) and the timestamp it wrote."""

    status: np.ndarray
    ts: np.ndarray

    @property
    def ok(self) -> bool:
        return bool((self.status == Status.OK).all())

    def rejects(self) -> list[tuple[int, str]]:
        from .head_append import MESSAGES
        bad = np.flatnonzero(self.status != Status.OK)
        return [(int(i), MESSAGES[Status(int(self.status[i]))]) for i in bad]


class Engine:
    """An open database directory. Use :func:`Engine.open`; close with :meth:`close`."""

    def __init__(self, path: str, options: DatabaseOptions) -> None:
        self.path = path
        self.options = options
        self.lock = threading.RLock()
        self._batch_depth = 0  # nesting of batch() (under the lock)
        self._pending: dict[Shard, int] = {}  # log positions to sync when the batch ends
        self._checkpoint_lock = threading.Lock()
        self.closed = False
        self.registry = SeriesRegistry()
        self.rules: dict[int, Rule] = {}  # by dest sid
        # Rules per (shard, stream): a stream is dropped when its last rule goes, and
        # scanning every rule for that made deleting many tiers quadratic.
        self._stream_rules: collections.Counter[tuple[int, int]] = collections.Counter()
        self.policies: dict[str, policies.TierPolicy] = {}  # in the order they were set
        self._writable_cache: np.ndarray | None = None  # see _writable; reset on rule changes
        self._rule_streams: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # shard → dests, streams
        self.cache = block.RowGroupCache(options.block_cache_bytes)
        self._lock_fd = _lock_dir(path)
        shards = _read_layout(path, options.shards)
        self.shards = [
            Shard(os.path.join(path, f"shard-{i:03d}"), i, fsync=options.fsync,
                  fsync_interval_s=options.fsync_interval_s, cache=self.cache)
            for i in range(shards)
        ]
        self._replaying = False
        self._recover()
        self._reconcile_policies()
        self._last_checkpoint = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if options.background:
            self._thread = threading.Thread(target=self._background, name="sensorium-bg",
                                            daemon=True)
            self._thread.start()

    @classmethod
    def open(cls, path: str, options: DatabaseOptions | None = None) -> Engine:
        os.makedirs(path, exist_ok=True)
        return cls(path, options or DatabaseOptions())

    # -- commits ----------------------------------------------------------------------------
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Holds the engine lock; everything logged inside commits with one fsync at the end.

        Every writer runs in one; callers may nest them to turn many calls (creates, rules,
        appends) into one durable commit. The fsync runs after the lock is released, so
        concurrent writers share it (group commit). A write is visible to readers as soon
        as it is applied and acknowledged once this returns; only a power loss (never a
        ``kill -9``) can take back a visible write that was not yet acknowledged.
        """
        with self.lock:
            self._batch_depth += 1
            try:
                yield
            finally:
                self._batch_depth -= 1
                pending = None
                if self._batch_depth == 0:
                    pending, self._pending = self._pending, {}
        if pending:
            for shard, position in pending.items():
                shard.wal.sync(position)

    def _logged(self, shard: Shard, position: int) -> None:
        if self._batch_depth:
            self._pending[shard] = max(position, self._pending.get(shard, 0))
        else:  # replay or a caller outside batch(): sync now
            shard.wal.sync(position)

    def _log_meta(self, shard: Shard, kind: str, payload: dict) -> None:
        self._logged(shard, shard.log_meta(kind, payload))

    # -- series -----------------------------------------------------------------------------
    def create(self, key: str, *, labels: dict[str, str] | None = None,
               retention_ms: int | None = None, policy: DuplicatePolicy | None = None,
               chunk_size: int = 4096, ignore_max_time_diff: int = 0,
               ignore_max_val_diff: float = 0.0) -> int:
        """Creates a series; raises SeriesExists. Returns its sid."""
        with self.batch():
            self._check_open()
            payload = {
                "sid": len(self.registry.meta), "key": key, "labels": dict(labels or {}),
                "retention_ms": self.options.retention_ms if retention_ms is None
                else int(retention_ms),
                "policy": None if policy is None else DuplicatePolicy(policy).name,
                "chunk_size": chunk_size, "ignore": [ignore_max_time_diff, ignore_max_val_diff],
            }
            if key in self.registry.by_key:
                from ..errors import SeriesExists
                raise SeriesExists(key)
            self._log_meta(self._shard_of_key(key), "create", payload)
            sid = self._apply_create(payload)
            if self.policies:
                self._govern(np.array([sid], np.int64))
            return sid

    def _apply_create(self, p: dict) -> int:
        return self.registry.create(
            p["key"], labels=p["labels"], retention_ms=p["retention_ms"],
            policy=None if p["policy"] is None else DuplicatePolicy[p["policy"]],
            shard=shard_of_key(p["key"], len(self.shards)), chunk_size=p["chunk_size"],
            ignore_max_time_diff=p["ignore"][0], ignore_max_val_diff=p["ignore"][1],
            sid=p["sid"])

    def create_many(self, keys: Sequence[str], labels: Sequence[dict[str, str]] | None = None,
                    *, retention_ms: int | None = None,
                    policy: DuplicatePolicy | None = None, shards: Sequence[int] | None = None,
                    apply_policies: bool = True) -> int:
        """Creates the series among ``keys`` that do not exist yet; returns how many.

        One log record per shard instead of one per series: this is how writes create
        series implicitly, and how front ends create series with labels in bulk.
        ``labels[i]`` belongs to ``keys[i]``; the first occurrence of a key wins. ``shards``
        places each key in a given shard instead of its key's hash (a tier goes where its
        source is). New series matching a tier policy get its tiers (``apply_policies``).
        """
        with self.batch():
            self._check_open()
            by_key = self.registry.by_key
            new = {}
            for i, key in enumerate(keys):
                if key not in by_key and key not in new:
                    new[key] = i
            if not new:
                return 0
            first = len(self.registry.meta)
            names = list(new)
            placed = [shard_of_key(k, len(self.shards)) for k in names] if shards is None \
                else [int(shards[new[k]]) for k in names]
            for number in sorted(set(placed)):
                mine = [j for j, sh in enumerate(placed) if sh == number]
                payload = {
                    "sids": [first + j for j in mine], "keys": [names[j] for j in mine],
                    "labels": None if labels is None else [labels[new[names[j]]] for j in mine],
                    "retention_ms": self.options.retention_ms if retention_ms is None
                    else int(retention_ms),
                    "policy": None if policy is None else DuplicatePolicy(policy).name,
                    "shard": number,
                }
                self._log_meta(self.shards[number], "create_many", payload)
                self._apply_create_many(payload)
            if apply_policies and self.policies:
                self._govern(np.arange(first, first + len(names), dtype=np.int64))
            return len(names)

    def _apply_create_many(self, p: dict) -> None:
        policy = NO_POLICY if p["policy"] is None else int(DuplicatePolicy[p["policy"]])
        shard = p.get("shard", shard_of_key(p["keys"][0], len(self.shards)))
        self.registry.create_many(
            p["sids"], p["keys"], p["labels"], retention_ms=np.int64(p["retention_ms"]),
            policy=np.int8(policy), shard=np.int16(shard))

    def alter_many(self, sids: np.ndarray, *, retention_ms: int) -> None:
        """Sets the retention of many series with one log record per shard."""
        with self.batch():
            self._check_open()
            sids = np.asarray(sids, np.int64)
            shard_of = self.registry.shard[sids]
            for number in np.unique(shard_of).tolist():
                payload = {"sids": sids[shard_of == number].tolist(),
                           "retention_ms": int(retention_ms)}
                self._log_meta(self.shards[number], "alter_many", payload)
                self._apply_alter_many(payload)

    def _apply_alter_many(self, p: dict) -> None:
        self.registry.retention_ms[np.asarray(p["sids"], np.int64)] = p["retention_ms"]

    def alter(self, key: str, *, labels: dict[str, str] | None = None,
              retention_ms: int | None = None, policy: DuplicatePolicy | None = None,
              chunk_size: int | None = None, ignore: tuple[int, float] | None = None) -> None:
        with self.batch():
            self._check_open()
            sid = self.registry.sid(key)
            payload: dict = {"sid": sid}
            if labels is not None:
                payload["labels"] = dict(labels)
            if retention_ms is not None:
                payload["retention_ms"] = int(retention_ms)
            if policy is not None:
                payload["policy"] = DuplicatePolicy(policy).name
            if chunk_size is not None:
                payload["chunk_size"] = int(chunk_size)
            if ignore is not None:
                payload["ignore"] = list(ignore)
            self._log_meta(self._shard(sid), "alter", payload)
            self._apply_alter(payload)

    def _apply_alter(self, p: dict) -> None:
        sid, reg = p["sid"], self.registry
        meta = reg.get(sid)
        if "labels" in p:
            meta.labels = p["labels"]
            reg.index.set_labels(sid, p["labels"])
        if "retention_ms" in p:
            reg.retention_ms[sid] = p["retention_ms"]
        if "policy" in p:
            reg.policy[sid] = DuplicatePolicy[p["policy"]]
        if "chunk_size" in p:
            meta.chunk_size = p["chunk_size"]
        if "ignore" in p:
            meta.ignore_max_time_diff, meta.ignore_max_val_diff = p["ignore"]
            reg.note_ignore(sid)

    def delete_series(self, key: str) -> None:
        """Removes a series, its rules and the rules that feed it."""
        with self.batch():
            self._check_open()
            sid = self.registry.sid(key)
            self._log_meta(self._shard(sid), "drop", {"sid": sid})
            self._apply_drop({"sid": sid})

    def _apply_drop(self, p: dict) -> None:
        sid = p["sid"]
        meta = self.registry.get(sid)
        for dest in list(meta.rules):
            self._apply_deleterule({"dest": dest})
        if sid in self.rules:
            self._apply_deleterule({"dest": sid, "keep": False})
        self.registry.drop(sid)

    # -- write path -------------------------------------------------------------------------
    def append(self, sids: np.ndarray, ts: np.ndarray, values: np.ndarray, *,
               override: DuplicatePolicy | None = None) -> AppendResult:
        """Writes a columnar batch; one outcome per row, good rows kept whatever the others.

        Args:
            sids: int32 series ids (-1 for keys that do not exist).
            ts: int64 epoch ms. values: float64.
            override: duplicate policy for this call only (ON_DUPLICATE).
        """
        sids = np.asarray(sids, np.int32)
        ts = np.asarray(ts, np.int64)
        values = np.asarray(values, np.float64)
        with self.batch():
            self._check_open()
            reg = self.registry
            n = len(reg.meta)
            writable = self._writable(n)
            res = resolve(
                sids, ts, values, max_ts=reg.max_ts, retention_ms=reg.retention_ms,
                policy=reg.policy, writable=writable,
                default_policy=self.options.duplicate_policy, override=override,
                read_existing=self._read_existing)
            self._log_and_apply(res.rows)
            return AppendResult(res.status, ts)

    def _rules_changed(self) -> None:
        self._writable_cache = None
        self._rule_streams.clear()

    def _writable(self, n: int) -> np.ndarray:
        """Per sid: may clients write it? (Rule destinations are written by their rule.)"""
        if self._writable_cache is None or len(self._writable_cache) != max(n, 1):
            writable = np.ones(max(n, 1), bool)
            if self.rules:
                writable[np.fromiter(self.rules, np.int64, len(self.rules))] = False
            self._writable_cache = writable
        return self._writable_cache

    def _read_existing(self, sids: np.ndarray, min_ts: int, max_ts: int) -> Rows:
        if len(self.shards) == 1:
            return self.shards[0].raw.read(sids, min_ts, max_ts)
        parts = [self.shards[i].raw.read(sids[self.registry.shard[sids] == i], min_ts, max_ts)
                 for i in range(len(self.shards))]
        from .table import concat, sort_dedup
        return sort_dedup(concat(parts, ("value",)))

    def _log_and_apply(self, rows: Rows) -> None:
        if len(rows) == 0:
            return
        if len(self.shards) == 1:
            self._logged(self.shards[0], self.shards[0].log_samples(rows))
            self._apply_rows(self.shards[0], rows)
            return
        shard_of = self.registry.shard[rows.sids]
        for i in np.unique(shard_of).tolist():
            part = rows.take(np.flatnonzero(shard_of == i))
            self._logged(self.shards[i], self.shards[i].log_samples(part))
            self._apply_rows(self.shards[i], part)

    def _apply_rows(self, shard: Shard, rows: Rows) -> None:
        """Applies resolved rows (sorted by sid, ts; NaN = deletion marker) to memory."""
        reg = self.registry
        late = rows.ts <= reg.max_ts[rows.sids]
        shard.raw.append(rows)
        values = rows.columns["value"]
        live = ~np.isnan(values)
        if live.any():
            s, t, v = rows.sids[live], rows.ts[live], values[live]
            last = np.flatnonzero(np.append(s[1:] != s[:-1], True))
            newer = t[last] >= reg.max_ts[s[last]]
            reg.max_ts[s[last][newer]] = t[last][newer]
            reg.last_value[s[last][newer]] = v[last][newer]
        if not live.all():  # deleting the newest sample moves max_ts back
            hit = rows.sids[~live][rows.ts[~live] == reg.max_ts[rows.sids[~live]]]
            for sid in np.unique(hit).tolist():
                self._reload_last(shard, sid)
        shard.streams.feed_raw(rows, late)

    def _reload_last(self, shard: Shard, sid: int) -> None:
        got = shard.read_raw(np.array([sid], np.int32), 0, int(self.registry.max_ts[sid]))
        self.registry.max_ts[sid] = got.ts[-1] if len(got) else EMPTY_TS
        self.registry.last_value[sid] = got.columns["value"][-1] if len(got) else np.nan

    def delete_range(self, key: str, min_ts: int, max_ts: int) -> int:
        """Deletes a series' samples in [min_ts, max_ts]; rules' buckets are recomputed."""
        with self.batch():
            self._check_open()
            sid = self.registry.sid(key)
            if sid in self.rules:
                raise InvalidArgument("cannot delete samples of a downsampling destination")
            cutoff = self.cutoff(sid)
            meta = self.registry.get(sid)
            if meta.rules and cutoff > 0 and min_ts < cutoff:
                raise InvalidArgument(
                    "When a series has compactions, deleting samples or compaction buckets "
                    "beyond the series retention period is not possible")
            shard = self._shard(sid)
            got = shard.read_raw(np.array([sid], np.int32), max(min_ts, cutoff), max_ts)
            if len(got):
                tomb = Rows(got.sids, got.ts, {"value": np.full(len(got), np.nan)})
                self._log_and_apply(tomb)
            return len(got)

    # -- rules ------------------------------------------------------------------------------
    def create_rule(self, source: str, dest: str, aggregator: str, bucket_ms: int,
                    align_ms: int = 0) -> None:
        """Adds a downsampling rule; a source holding data is backfilled at once."""
        with self.batch():
            self._check_open()
            agg = parse_aggregator(aggregator)
            if bucket_ms <= 0:
                raise InvalidArgument("bucketDuration must be greater than zero")
            if align_ms < 0:
                raise InvalidArgument("Couldn't parse alignTimestamp")
            src, dst = self.registry.sid(source), self.registry.sid(dest)
            if src == dst:
                raise RuleError("the source key and destination key should be different")
            if dst in self.rules:
                raise RuleError("the destination key already has a src rule")
            if self.registry.get(dst).rules:
                raise RuleError("the destination key already has a dst rule")
            if self.registry.max_ts[dst] != EMPTY_TS:
                raise RuleError("the destination key already holds samples")
            if self.registry.shard[src] != self.registry.shard[dst]:
                raise RuleError("source and destination must be in the same shard "
                                "(give both keys the same {hash tag})")
            if self._root(src) == dst:
                raise RuleError("the rule would create a cycle")
            payload = {"source": src, "dest": dst, "aggregator": agg,
                       "bucket_ms": int(bucket_ms), "align_ms": int(align_ms)}
            self._log_meta(self._shard(src), "createrule", payload)
            self._apply_createrule(payload)

    def create_rules(self, sources: Sequence[str], dests: Sequence[str], aggregator: str,
                     bucket_ms: int, align_ms: int = 0, *, sketch: bool = False) -> None:
        """Adds many rules of one shape with one log record per shard (tier policies).

        ``sketch`` makes the rules' streams keep sketches (a tier listing a percentile).
        Each rule is checked as ``create_rule`` checks it; sources holding data are
        backfilled.
        """
        with self.batch():
            self._check_open()
            agg = parse_aggregator(aggregator)
            reg = self.registry
            src = np.array([reg.sid(k) for k in sources], np.int64)
            dst = np.array([reg.sid(k) for k in dests], np.int64)
            bad = (src == dst) | (reg.shard[src] != reg.shard[dst]) | \
                np.isin(dst, np.fromiter(self.rules, np.int64, len(self.rules))) | \
                (reg.max_ts[dst] != EMPTY_TS)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise RuleError(f"cannot create the rule {sources[i]} -> {dests[i]}")
            shard_of = reg.shard[src]
            for number in np.unique(shard_of).tolist():
                mine = shard_of == number
                payload = {"sources": src[mine].tolist(), "dests": dst[mine].tolist(),
                           "aggregator": agg, "bucket_ms": int(bucket_ms),
                           "align_ms": int(align_ms), "sketch": bool(sketch)}
                self._log_meta(self.shards[number], "createrules", payload)
                self._apply_createrules(payload)

    def _apply_createrules(self, p: dict) -> None:
        for source, dest in zip(p["sources"], p["dests"], strict=True):
            self._apply_createrule({"source": source, "dest": dest, "aggregator": p["aggregator"],
                                    "bucket_ms": p["bucket_ms"], "align_ms": p["align_ms"],
                                    "sketch": p["sketch"]})

    def _root(self, sid: int) -> int:
        while sid in self.rules:
            sid = self.rules[sid].source
        return sid

    def _apply_createrule(self, p: dict) -> None:
        src, dst = p["source"], p["dest"]
        shard = self._shard(src)
        if src in self.rules:  # a tier built on a tier reads the finer tier's stream
            key = StreamKey(self.rules[src].stream, True, p["bucket_ms"], p["align_ms"])
        else:
            key = StreamKey(src, False, p["bucket_ms"], p["align_ms"])
        stream, created = shard.streams.ensure(key)
        sketch = percentile_of(p["aggregator"]) is not None or p.get("sketch", False)
        if sketch:  # the stream keeps sketches
            shard.streams.retain_sketch(stream)
        rule = Rule(src, dst, p["aggregator"], p["bucket_ms"], p["align_ms"], stream, sketch)
        self.rules[dst] = rule
        self._stream_rules[(shard.number, stream)] += 1
        self._rules_changed()
        self.registry.get(src).rules.append(dst)
        self.registry.get(dst).source = src
        if created:
            self._backfill(shard, stream, key)

    def _backfill(self, shard: Shard, stream: int, key: StreamKey) -> None:
        """Builds a new stream from its input's existing data (all buckets, vectorised)."""
        src = np.array([key.source], np.int32)
        if key.from_stream:
            rows = shard.read_closed_states(src, -(2**62), 2**62)
        else:
            rows = shard.read_raw(src, 0, 2**62)
        if len(rows) == 0:
            return
        dur, align = key.bucket_ms, key.align_ms % key.bucket_ms
        b = (rows.ts - align) // dur * dur + align
        from . import states as st
        starts = st.group_starts(b)
        if key.from_stream:
            grouped = st.reduce_states(dict(rows.columns), starts)
        else:
            grouped = st.aggregate_samples(rows.ts, rows.columns["value"], starts)
        shard.streams._advance(np.full(len(starts), stream, np.int64), b[starts], grouped)

    def delete_rule(self, source: str, dest: str) -> None:
        with self.batch():
            self._check_open()
            src, dst = self.registry.sid(source), self.registry.sid(dest)
            rule = self.rules.get(dst)
            if rule is None or rule.source != src:
                raise RuleError("compaction rule does not exist")
            self._log_meta(self._shard(src), "deleterule", {"dest": dst})
            self._apply_deleterule({"dest": dst})

    def _apply_deleterule(self, p: dict) -> None:
        rule = self.rules[p["dest"]]
        shard = self._shard(rule.source)
        keep = not self._replaying and p.get("keep", True)
        if keep:  # the destination keeps its buckets as plain samples, as in RedisTimeSeries
            from .read import rule_samples
            ts, values = rule_samples(self, rule, 0, 2**62, latest=False)
        del self.rules[p["dest"]]
        self._rules_changed()
        self.registry.get(rule.source).rules.remove(rule.dest)
        self.registry.get(rule.dest).source = None
        if rule.sketch:
            shard.streams.release_sketch(rule.stream)
        users = self._stream_rules[(shard.number, rule.stream)] - 1
        self._stream_rules[(shard.number, rule.stream)] = users
        if not users and not shard.streams.of_stream.get(rule.stream):
            shard.streams.drop(rule.stream)
        if keep and len(ts):
            rows = Rows(np.full(len(ts), rule.dest, np.int32), ts, {"value": values})
            self._log_and_apply(rows)

    # -- tier policies (engine/policies.py) -------------------------------------------------
    def set_policy(self, policy: policies.TierPolicy,
                   progress: policies.Progress | None = None) -> dict[str, Any]:
        """Adds or replaces a policy and brings every series it governs in line: new tiers
        are created and backfilled from the finer data that still exists, reshaped tiers
        (and the coarser ones built on them) are rebuilt, removed ones deleted, retentions
        updated. Runs in commits of ``policies.CHUNK_SERIES`` series, so writes go on
        meanwhile; ``progress(done, total)`` is called after each.
        """
        with self.batch():
            self._check_open()
            old = self.policies.get(policy.name)
            self._log_meta(self.shards[0], "policy", policy.to_json())
            self._apply_policy(policy.to_json())
            mine = policies.governed(self, self.registry.live_sids()).get(policy.name,
                                                                          np.empty(0, np.int64))
        retire, retention = policies.changes(old, policy) if old else ([], [])
        if retire:
            policies.retire_tiers(self, old, retire, mine)
        for tier in retention:
            with self.batch():
                keys = [policies.dest_key(self.registry.key(s), tier) for s in mine.tolist()]
                dests = self.registry.sids(keys)
                self.alter_many(dests[dests >= 0], retention_ms=tier.retention_ms)
        created = policies.apply(self, policy, mine, progress)
        return {"series": len(mine), "tiers_created": created, "tiers_rebuilt_or_removed": retire}

    def drop_policy(self, name: str, *, delete_tiers: bool = False) -> None:
        """Forgets a policy: new series no longer get its tiers. Existing tiers stay, unless
        ``delete_tiers``."""
        with self.batch():
            self._check_open()
            policy = self.policies.get(name)
            if policy is None:
                raise InvalidArgument(f"no policy named {name!r}")
            mine = policies.governed(self, self.registry.live_sids()).get(name,
                                                                          np.empty(0, np.int64))
            self._log_meta(self.shards[0], "droppolicy", {"name": name})
            self._apply_droppolicy({"name": name})
        if delete_tiers:
            policies.retire_tiers(self, policy, [t.name for t in policy.tiers], mine)

    def _apply_policy(self, p: dict) -> None:
        policy = policies.parse_policy({"name": p["name"], "filter": p["filters"],
                                        "raw_retention_ms": p["raw_retention_ms"],
                                        "tiers": p["tiers"]})
        self.policies[policy.name] = policy  # a replaced policy keeps its place in the order

    def _apply_droppolicy(self, p: dict) -> None:
        self.policies.pop(p["name"], None)

    def _govern(self, sids: np.ndarray) -> None:
        """New series get the tiers of the policy that governs them (inside a batch)."""
        for name, mine in policies.governed(self, sids).items():
            policies.apply(self, self.policies[name], mine)

    def _reconcile_policies(self) -> None:
        """After a crash in the middle of applying a policy, finishes it (idempotent)."""
        if self.policies:
            self._govern(self.registry.live_sids())

    # -- helpers ----------------------------------------------------------------------------
    def _shard(self, sid: int) -> Shard:
        return self.shards[int(self.registry.shard[sid])]

    def _shard_of_key(self, key: str) -> Shard:
        return self.shards[shard_of_key(key, len(self.shards))]

    def cutoff(self, sid: int) -> int:
        """Oldest visible timestamp of a raw series (retention relative to its newest)."""
        ret = int(self.registry.retention_ms[sid])
        mx = int(self.registry.max_ts[sid])
        if ret <= 0 or mx == EMPTY_TS:
            return 0
        return mx - ret

    def _check_open(self) -> None:
        if self.closed:
            raise EngineClosed()

    # -- recovery and checkpoints -----------------------------------------------------------
    def _recover(self) -> None:
        self._replaying = True
        try:
            for shard in self.shards:
                loaded = shard.load_checkpoint()
                if loaded is None:
                    continue
                series, write_state, streams, rules, policy_docs = loaded
                for doc in policy_docs:
                    self._apply_policy(doc)
                self.registry.restore(series, shard.number)
                sids = write_state["sids"]
                self.registry.max_ts[sids] = write_state["max_ts"]
                self.registry.last_value[sids] = write_state["last_value"]
                self._restore_rules(shard, rules)
                shard.streams.restore(streams)
            for shard in self.shards:
                for rec in shard.replay():
                    self._replay_record(shard, rec)
        finally:
            self._replaying = False

    def _restore_rules(self, shard: Shard, rules: list[dict]) -> None:
        """A checkpoint's rules, in bulk (300k rules restore in about a second)."""
        streams = np.array([r["stream"] for r in rules], np.int64)
        _, first = np.unique(streams, return_index=True)  # rules share streams
        keys = [StreamKey(r["stream_source"], r["from_stream"], r["bucket_ms"], r["align_ms"])
                for r in (rules[i] for i in first.tolist())]
        # The stored ids, not the next free ones: ids of dropped streams are never reused.
        shard.streams.ensure_many(keys, streams[first])
        get = self.registry.get
        for r in rules:
            sketch = r["sketch"] if "sketch" in r else percentile_of(r["aggregator"]) is not None
            if sketch:  # its sketches are stored already
                shard.streams.retain_sketch(r["stream"], recompute=False)
            self.rules[r["dest"]] = Rule(r["source"], r["dest"], r["aggregator"],
                                         r["bucket_ms"], r["align_ms"], r["stream"], sketch)
            self._stream_rules[(shard.number, r["stream"])] += 1
            get(r["source"]).rules.append(r["dest"])
            get(r["dest"]).source = r["source"]
        self._rules_changed()

    def _replay_record(self, shard: Shard, rec: records.Record) -> None:
        if isinstance(rec, records.SamplesRecord):
            rows = Rows(rec.sids.astype(np.int32), rec.ts.copy(), {"value": rec.values.copy()})
            self._apply_rows(shard, rows)
            return
        apply = {"create": self._apply_create, "create_many": self._apply_create_many,
                 "alter": self._apply_alter,
                 "drop": self._apply_drop, "createrule": self._apply_createrule,
                 "deleterule": self._apply_deleterule, "alter_many": self._apply_alter_many,
                 "createrules": self._apply_createrules, "policy": self._apply_policy,
                 "droppolicy": self._apply_droppolicy}[rec.kind]
        try:
            apply(rec.payload)
        except Exception as exc:  # a record that no longer applies must not block startup
            log.warning("skipping log record %s %s: %s", rec.kind, rec.payload, exc)

    def checkpoint(self) -> None:
        """Writes every shard's memory to blocks and truncates the logs."""
        with self._checkpoint_lock:
            for shard in self.shards:
                with self.lock:
                    self._check_open()
                    sids = self.registry.live_sids()
                    sids = sids[self.registry.shard[sids] == shard.number]
                    write_state = {"sids": sids, "max_ts": self.registry.max_ts[sids],
                                   "last_value": self.registry.last_value[sids]}
                    rules = [self._rule_json(r) for r in self.rules.values()
                             if self.registry.shard[r.source] == shard.number]
                    cp = shard.begin_checkpoint(
                        self.registry.snapshot(sids), write_state, rules,
                        [p.to_json() for p in self.policies.values()] if shard.number == 0
                        else [])
                try:
                    raw_meta, rollup_meta, name = shard.write_checkpoint(cp)
                except BaseException:
                    with self.lock:  # keep serving from memory; the log still has it all
                        shard.abort_checkpoint(cp)
                    raise
                with self.lock:
                    shard.finish_checkpoint(cp, raw_meta, rollup_meta, name)
            self._last_checkpoint = time.monotonic()

    def _rule_json(self, r: Rule) -> dict:
        key = self._shard(r.source).streams.keys[r.stream]
        assert key is not None
        return {"source": r.source, "dest": r.dest, "aggregator": r.aggregator,
                "bucket_ms": r.bucket_ms, "align_ms": r.align_ms, "stream": r.stream,
                "stream_source": key.source, "from_stream": key.from_stream, "sketch": r.sketch}

    def maintain(self) -> bool:
        """One round of background upkeep: drop expired blocks, merge one run per table.

        Returns whether anything changed. Merges run outside the engine lock.
        """
        changed = False
        with self._checkpoint_lock:
            for shard in self.shards:
                for table, visible, marker in (
                    (shard.raw, self._raw_visible, lambda r: np.isnan(r.columns["value"])),
                    (shard.rollup, lambda r, s=shard: self._state_visible(s, r.sids, r.ts),
                     lambda r: r.columns["count"] == 0),
                    (shard.sketch, lambda r, s=shard: self._state_visible(
                        s, r.sids, sk.bucket_of_key(r.ts)),
                     lambda r: r.columns["count"] == 0),
                ):
                    changed |= self._maintain_table(shard, table, visible, marker)
        return changed

    def _raw_visible(self, rows: Rows) -> np.ndarray:
        reg = self.registry
        n = len(reg.meta)
        inside = rows.sids < n
        sids = np.where(inside, rows.sids, 0)
        ret, mx = reg.retention_ms[sids], reg.max_ts[sids]
        return inside & reg.alive[sids] & ((ret <= 0) | (mx == EMPTY_TS) | (rows.ts >= mx - ret))

    def _state_cutoff(self, shard: Shard) -> np.ndarray:
        """Per stream of ``shard``: the oldest bucket a destination still shows (0 = keep
        all). A stream without destinations (it feeds a coarser one) or with one kept
        forever keeps everything; otherwise the longest retention counts back from its
        newest closed bucket. Tiers keep what raw let expire; their own retention reclaims them."""
        if shard.number not in self._rule_streams:
            mine = [(r.dest, r.stream) for r in self.rules.values()
                    if self.registry.shard[r.source] == shard.number]
            self._rule_streams[shard.number] = (np.array([d for d, _ in mine], np.int64),
                                                np.array([s for _, s in mine], np.int64))
        dests, streams = self._rule_streams[shard.number]
        n = len(shard.streams.keys)
        ret = self.registry.retention_ms[dests]
        longest = np.zeros(n, np.int64)
        np.maximum.at(longest, streams, ret)
        forever = np.ones(n, bool)
        forever[streams] = False
        np.logical_or.at(forever, streams, ret <= 0)
        opened = shard.streams.open_bucket[:n]
        newest = opened - shard.streams.bucket_ms[:n]  # the newest closed bucket
        return np.where(forever | (opened == EMPTY_TS), 0, newest - longest)

    def _state_visible(self, shard: Shard, streams: np.ndarray, bucket: np.ndarray
                       ) -> np.ndarray:
        alive = self._stream_alive(shard)
        at = np.minimum(streams, len(alive) - 1)
        cutoff = np.append(self._state_cutoff(shard), 0)
        return alive[at] & (bucket >= cutoff[at])

    def _stream_alive(self, shard: Shard) -> np.ndarray:
        return np.array([k is not None for k in shard.streams.keys] + [False], bool)

    def _maintain_table(self, shard: Shard, table: Table, visible: Callable[[Rows], np.ndarray],
                        marker: Callable[[Rows], np.ndarray]) -> bool:
        with self.lock:
            blocks = list(table.blocks)
            if table is shard.raw:
                reg = self.registry
                n = len(reg.meta)
                ret, mx = reg.retention_ms[:n], reg.max_ts[:n]
                cutoff = np.where((ret > 0) & (mx != EMPTY_TS), mx - ret, 0)
                alive = reg.alive[:n].copy()
            else:
                alive = self._stream_alive(shard)[:-1]
                cutoff = self._state_cutoff(shard)
                if table is shard.sketch:  # sketch rows are keyed by (bucket, slot)
                    cutoff = np.where(cutoff > 0, cutoff << sk.SLOT_BITS, 0)
        dead = [blocks[i] for i in compaction.expired(blocks, cutoff, alive)]
        run = compaction.plan([b for b in blocks if b not in dead])
        if not dead and run is None:
            return False
        merged_meta = None
        if run is not None:
            live_blocks = [b for b in blocks if b not in dead]
            chosen = live_blocks[run[0]:run[1]]
            drop_markers = blocks.index(chosen[0]) == 0 or all(
                b in dead for b in blocks[: blocks.index(chosen[0])])
            merged = compaction.merge(chosen, table.names, drop_markers=drop_markers,
                                      visible=visible, marker=marker)
            merged_meta = shard.write_block(table, merged) if len(merged) else None
        with self.lock:
            new = [b for b in table.blocks if b not in dead]
            if run is not None:
                at = new.index(chosen[0])
                new = new[:at] + ([merged_meta] if merged_meta else []) + [
                    b for b in new[at:] if b not in chosen]
            table.blocks = new
            shard.commit_manifest()
        return True

    def merge_head_parts(self) -> bool:
        """Merges one run of sorted in-memory parts, outside the lock; True if it did."""
        for shard in self.shards:
            for table in (shard.raw, shard.rollup):
                with self.lock:
                    run = table.plan_part_merge()
                if run is not None:
                    merged = table.merge_parts(run)  # numpy sorts release the GIL
                    with self.lock:
                        table.swap_parts(run, merged)
                    return True
        return False

    def _background(self) -> None:
        while not self._stop.wait(0.5):
            try:
                while self.merge_head_parts() and not self._stop.is_set():
                    pass
                rows = max(s.memory_rows() for s in self.shards)
                due = time.monotonic() - self._last_checkpoint > self.options.checkpoint_interval_s
                if rows >= self.options.head_flush_rows or (due and rows):
                    self.checkpoint()
                self.maintain()
            except EngineClosed:
                return
            except Exception:  # keep serving; the next round retries
                log.exception("background checkpoint failed")

    def close(self) -> None:
        """Stops background work, checkpoints and releases the directory. Idempotent."""
        if self.closed:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.checkpoint()
        with self.lock:
            self.closed = True
            for shard in self.shards:
                shard.close()
            os.close(self._lock_fd)

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lock_dir(path: str) -> int:
    fd = os.open(os.path.join(path, "LOCK"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockedError(path) from None
    return fd


def _read_layout(path: str, shards: int) -> int:
    file = os.path.join(path, LAYOUT_FILE)
    if os.path.exists(file):
        with open(file) as f:
            return int(json.load(f)["shards"])
    with open(file + ".tmp", "w") as f:
        json.dump({"format": 1, "shards": shards}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(file + ".tmp", file)
    return shards


__all__ = ["AppendResult", "Engine", "Resolved", "Rule", "NO_POLICY", "SeriesNotFound"]
