"""The public Python API: method names and keywords of redis-py's ``r.ts()``.

Code written for ``redis.Redis().ts()`` ports by changing one line::

    ts = sensorium.open("./data")          # instead of redis.Redis().ts()
    ts.create("sensor:1", retention_msecs=7 * 86_400_000, labels={"zone": "A"})
    ts.add("sensor:1", "*", 21.5)
    ts.range("sensor:1", "-", "+", aggregation_type="avg", bucket_size_msec=60_000)

Replies have redis-py's shapes (``range`` → list of (ts, value) tuples, ``get`` → tuple or
None, ``mrange`` → list of {key: [labels, samples]}). Errors are ``SensoriumError`` subclasses
carrying RedisTimeSeries' messages. ``madd`` also takes columns for high-rate ingest.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from . import allocator
from .config import DatabaseOptions
from .engine import planner, policies, read, tiered
from .engine.db import AppendResult, Engine
from .engine.head_append import MESSAGES, Status
from .engine.index import matchers_from_dict, parse_filters
from .engine.query import Aggregation, reduce_group
from .errors import DuplicateSample as DuplicateSampleError
from .errors import InvalidArgument, InvalidSampleError, OutOfRetention, SeriesNotFound, TooOld
from .model import REDUCERS, DuplicatePolicy, parse_aggregator

_ERRORS = {Status.OUT_OF_RETENTION: OutOfRetention, Status.DUPLICATE_BLOCKED: DuplicateSampleError}
MAX_TS = 2**62
# Replies of at least this many samples are built with the garbage collector paused
# (``_pairs``): below it a reply triggers no collection anyway (the threshold is 700).
_GC_PAUSE_ROWS = 700


def open(path: str, options: DatabaseOptions | None = None, **kwargs: Any) -> Database:  # noqa: A001
    """Opens (or creates) the database in directory ``path``.

    Keyword arguments are ``DatabaseOptions`` fields (e.g. ``fsync="periodic"``).
    """
    if kwargs:
        options = DatabaseOptions(**{**_asdict(options or DatabaseOptions()), **kwargs})
    if (options or DatabaseOptions()).keep_freed_memory:
        allocator.keep_freed_memory()
    return Database(Engine.open(path, options))


def _asdict(o: DatabaseOptions) -> dict[str, Any]:
    return {k: getattr(o, k) for k in o.__slots__}  # type: ignore[attr-defined]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _ts(value: int | str | None, *, default: int | None = None) -> int:
    if value is None or value == "*":
        return _now_ms() if default is None else default
    try:
        ts = int(value)
    except (TypeError, ValueError):
        raise InvalidSampleError("invalid timestamp") from None
    if ts < 0:
        raise InvalidSampleError("invalid timestamp, must be a nonnegative integer")
    return ts


def _bound(value: int | str, low: bool) -> int:
    if value == "-":
        return 0
    if value == "+":
        return MAX_TS
    try:
        ts = int(value)
    except (TypeError, ValueError):
        raise InvalidArgument("wrong fromTimestamp" if low else "wrong toTimestamp") from None
    if ts < 0:
        raise InvalidArgument("wrong fromTimestamp" if low else "wrong toTimestamp")
    return ts


def _policy(p: str | DuplicatePolicy | None) -> DuplicatePolicy | None:
    return None if p is None else DuplicatePolicy.parse(p)


class Database:
    """An open Sensorium database. Thread-safe; close it (or use ``with``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def close(self) -> None:
        self.engine.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- series -----------------------------------------------------------------------------
    def create(self, key: str, retention_msecs: int | None = None, uncompressed: bool = False,
               labels: dict[str, str] | None = None, chunk_size: int | None = None,
               duplicate_policy: str | None = None, ignore_max_time_diff: int | None = None,
               ignore_max_val_diff: float | None = None) -> bool:
        if retention_msecs is not None and int(retention_msecs) < 0:
            raise InvalidArgument("Couldn't parse RETENTION")
        self.engine.create(key, labels=labels, retention_ms=retention_msecs,
                           policy=_policy(duplicate_policy), chunk_size=chunk_size or 4096,
                           ignore_max_time_diff=ignore_max_time_diff or 0,
                           ignore_max_val_diff=ignore_max_val_diff or 0.0)
        return True

    def alter(self, key: str, retention_msecs: int | None = None,
              labels: dict[str, str] | None = None, chunk_size: int | None = None,
              duplicate_policy: str | None = None, ignore_max_time_diff: int | None = None,
              ignore_max_val_diff: float | None = None) -> bool:
        ignore = None
        if ignore_max_time_diff is not None or ignore_max_val_diff is not None:
            ignore = (ignore_max_time_diff or 0, ignore_max_val_diff or 0.0)
        self.engine.alter(key, labels=labels, retention_ms=retention_msecs,
                          policy=_policy(duplicate_policy), chunk_size=chunk_size, ignore=ignore)
        return True

    def delete_series(self, key: str) -> bool:
        """Deletes a whole series (``DEL key`` in Redis)."""
        self.engine.delete_series(key)
        return True

    # -- writes -----------------------------------------------------------------------------
    def add(self, key: str, timestamp: int | str, value: float,
            retention_msecs: int | None = None, uncompressed: bool = False,
            labels: dict[str, str] | None = None, chunk_size: int | None = None,
            duplicate_policy: str | None = None, ignore_max_time_diff: int | None = None,
            ignore_max_val_diff: float | None = None, on_duplicate: str | None = None) -> int:
        """Adds one sample, creating the series if needed; returns its timestamp."""
        ts = _ts(timestamp)
        value = _value(value)
        eng = self.engine
        with eng.batch():
            if key not in eng.registry.by_key:
                self.create(key, retention_msecs, uncompressed, labels, chunk_size,
                            duplicate_policy, ignore_max_time_diff, ignore_max_val_diff)
                on_duplicate = None  # ignored when the call creates the key, as in Redis
            sid = eng.registry.sid(key)
            if self._ignored(sid, ts, value, on_duplicate):
                return int(eng.registry.max_ts[sid])
            res = eng.append(np.array([sid]), np.array([ts]), np.array([value]),
                             override=_policy(on_duplicate))
        _raise_first(res)
        return ts

    def _ignored(self, sid: int, ts: int, value: float, on_duplicate: str | None) -> bool:
        """The IGNORE filter: a near-duplicate of the newest sample under policy LAST."""
        eng = self.engine
        meta = eng.registry.get(sid)
        if meta.ignore_max_time_diff <= 0 and meta.ignore_max_val_diff <= 0:
            return False
        policy = _policy(on_duplicate)
        if policy is None:
            own = int(eng.registry.policy[sid])
            policy = DuplicatePolicy(own) if own >= 0 else eng.options.duplicate_policy
        mx = int(eng.registry.max_ts[sid])
        return (policy == DuplicatePolicy.LAST and sid not in eng.rules and mx >= 0
                and ts >= mx and ts - mx <= meta.ignore_max_time_diff
                and abs(value - float(eng.registry.last_value[sid])) <= meta.ignore_max_val_diff)

    def madd(self, ktv_tuples: Sequence[tuple[str, int | str, float]] | Sequence[str] | np.ndarray,
             timestamps: Iterable[int] | np.ndarray | None = None,
             values: Iterable[float] | np.ndarray | None = None, *,
             create: bool = True,
             new_labels: Callable[[list[str]], Sequence[dict[str, str]]] | None = None,
             ) -> list[int | InvalidSampleError] | AppendResult:
        """Adds many samples.

        Two forms:
          * ``madd([(key, ts, value), ...])`` — redis-py's form and RedisTimeSeries' MADD
            semantics: keys must exist; returns one timestamp or exception per sample.
          * ``madd(keys, timestamps, values)`` — columns (numpy arrays or sequences) for
            many series at once, the fast path; missing series are created with the
            database defaults when ``create``; returns an ``AppendResult`` (per-row status).
            ``keys`` may also be an integer array of ids from ``series_ids``, which skips
            the key lookup (about a third of the cost of a batch). ``new_labels(keys)``
            gives the labels of the series this call creates (so tier policies and label
            queries see them); existing series keep theirs.
        """
        if timestamps is None:
            return self._madd_tuples(ktv_tuples)  # type: ignore[arg-type]
        keys = ktv_tuples
        ts = np.asarray(timestamps, np.int64)
        vals = np.asarray(values, np.float64)
        if not (len(keys) == len(ts) == len(vals)):
            raise InvalidArgument("keys, timestamps and values must have the same length")
        eng = self.engine
        with eng.batch():
            if isinstance(keys, np.ndarray) and keys.dtype.kind in "iu":
                sids = eng.registry.live(keys)
            else:
                sids = self.series_ids(keys, create=create and new_labels is None)
                missing = np.flatnonzero(sids < 0)
                if new_labels is not None and create and len(missing):
                    new = list(dict.fromkeys(keys[i] for i in missing.tolist()))
                    eng.create_many(new, list(new_labels(new)))
                    sids[missing] = eng.registry.sids([keys[i] for i in missing.tolist()])
            return eng.append(sids, ts, vals)

    def series_ids(self, keys: Sequence[str] | np.ndarray, *, create: bool = True) -> np.ndarray:
        """Ids (int32) of many series at once, for ``madd``; -1 for missing keys.

        With ``create``, missing series are created with the database defaults. An id stays
        valid until its series is deleted (then ``madd`` reports it as a missing key).
        """
        eng = self.engine
        with eng.batch():
            sids = eng.registry.sids(keys)
            missing = np.flatnonzero(sids < 0)
            if create and len(missing):
                new = [keys[i] for i in missing.tolist()]
                eng.create_many(new)
                sids[missing] = eng.registry.sids(new)
            return sids

    def create_many(self, keys: Sequence[str], labels: Sequence[dict[str, str]] | None = None,
                    retention_msecs: int | None = None,
                    duplicate_policy: str | None = None) -> int:
        """Creates those of ``keys`` that do not exist yet, in one commit; returns how many.

        ``labels[i]`` (optional) are the labels of ``keys[i]``. Existing series are left
        untouched, so front ends can call this for every key of a batch they are unsure of.
        """
        if retention_msecs is not None and int(retention_msecs) < 0:
            raise InvalidArgument("Couldn't parse RETENTION")
        if labels is not None and len(labels) != len(keys):
            raise InvalidArgument("keys and labels must have the same length")
        return self.engine.create_many(keys, labels, retention_ms=retention_msecs,
                                       policy=_policy(duplicate_policy))

    def _madd_tuples(self, ktv: Sequence[tuple[str, int | str, float]]
                     ) -> list[int | InvalidSampleError]:
        n = len(ktv)
        status = np.zeros(n, np.int8)
        ts = np.zeros(n, np.int64)
        vals = np.zeros(n)
        errors: dict[int, InvalidSampleError] = {}
        for i, (_, t, v) in enumerate(ktv):
            try:
                ts[i], vals[i] = _ts(t), _value(v)
            except InvalidSampleError as exc:
                errors[i] = exc
                status[i] = 1
        eng = self.engine
        with eng.batch():
            sids = eng.registry.sids([k for k, _, _ in ktv])
            good = np.flatnonzero(status == 0)  # rows that parsed
            res = eng.append(sids[good], ts[good], vals[good])
        out: list[int | InvalidSampleError] = []
        st_full = np.zeros(n, np.int8)
        st_full[good] = res.status
        for i in range(n):
            if i in errors:
                out.append(errors[i])
            elif st_full[i] == Status.OK:
                out.append(int(ts[i]))
            else:
                code = Status(int(st_full[i]))
                out.append(_ERRORS.get(code, InvalidSampleError)(MESSAGES[code]))
        return out

    def incrby(self, key: str, value: float, timestamp: int | str | None = None,
               retention_msecs: int | None = None, uncompressed: bool = False,
               labels: dict[str, str] | None = None, chunk_size: int | None = None,
               duplicate_policy: str | None = None, ignore_max_time_diff: int | None = None,
               ignore_max_val_diff: float | None = None) -> int:
        return self._incr(key, _incr_value(value), timestamp, retention_msecs, labels,
                          chunk_size, duplicate_policy, ignore_max_time_diff,
                          ignore_max_val_diff)

    def decrby(self, key: str, value: float, timestamp: int | str | None = None,
               retention_msecs: int | None = None, uncompressed: bool = False,
               labels: dict[str, str] | None = None, chunk_size: int | None = None,
               duplicate_policy: str | None = None, ignore_max_time_diff: int | None = None,
               ignore_max_val_diff: float | None = None) -> int:
        return self._incr(key, -_incr_value(value), timestamp, retention_msecs, labels,
                          chunk_size, duplicate_policy, ignore_max_time_diff,
                          ignore_max_val_diff)

    def _incr(self, key: str, delta: float, timestamp: int | str | None,
              retention_msecs: int | None, labels: dict[str, str] | None,
              chunk_size: int | None, duplicate_policy: str | None,
              ignore_t: int | None, ignore_v: float | None) -> int:
        ts = _ts(timestamp)
        eng = self.engine
        with eng.batch():
            if key not in eng.registry.by_key:
                self.create(key, retention_msecs, False, labels, chunk_size, duplicate_policy,
                            ignore_t, ignore_v)
            sid = eng.registry.sid(key)
            mx = int(eng.registry.max_ts[sid])
            if mx >= 0 and ts < mx:
                raise TooOld()
            last = float(eng.registry.last_value[sid]) if mx >= 0 else 0.0
            res = eng.append(np.array([sid]), np.array([ts]), np.array([last + delta]),
                             override=DuplicatePolicy.LAST)
        _raise_first(res)
        return ts

    def delete(self, key: str, from_time: int | str, to_time: int | str) -> int:
        """Deletes the samples of ``key`` in [from_time, to_time]; returns how many."""
        lo, hi = _bound(from_time, True), _bound(to_time, False)
        if lo > hi:
            return 0
        return self.engine.delete_range(key, lo, hi)

    # -- rules ------------------------------------------------------------------------------
    def createrule(self, source_key: str, dest_key: str, aggregation_type: str,
                   bucket_size_msec: int, align_timestamp: int | None = None) -> bool:
        self.engine.create_rule(source_key, dest_key, aggregation_type, int(bucket_size_msec),
                                int(align_timestamp or 0))
        return True

    def deleterule(self, source_key: str, dest_key: str) -> bool:
        self.engine.delete_rule(source_key, dest_key)
        return True

    # -- reads ------------------------------------------------------------------------------
    def range(self, key: str, from_time: int | str, to_time: int | str,
              count: int | None = None, aggregation_type: str | None = None,
              bucket_size_msec: int | None = 0, filter_by_ts: list[int] | None = None,
              filter_by_min_value: float | None = None,
              filter_by_max_value: float | None = None, align: int | str | None = None,
              latest: bool | None = False, bucket_timestamp: str | None = None,
              empty: bool | None = False) -> list[tuple[int, float]]:
        return self._range(key, from_time, to_time, False, count, aggregation_type,
                           bucket_size_msec, filter_by_ts, filter_by_min_value,
                           filter_by_max_value, align, latest, bucket_timestamp, empty)

    def revrange(self, key: str, from_time: int | str, to_time: int | str,
                 count: int | None = None, aggregation_type: str | None = None,
                 bucket_size_msec: int | None = 0, filter_by_ts: list[int] | None = None,
                 filter_by_min_value: float | None = None,
                 filter_by_max_value: float | None = None, align: int | str | None = None,
                 latest: bool | None = False, bucket_timestamp: str | None = None,
                 empty: bool | None = False) -> list[tuple[int, float]]:
        return self._range(key, from_time, to_time, True, count, aggregation_type,
                           bucket_size_msec, filter_by_ts, filter_by_min_value,
                           filter_by_max_value, align, latest, bucket_timestamp, empty)

    def range_columns(self, key: str, from_time: int | str, to_time: int | str, *,
                      reverse: bool = False, **options: Any) -> tuple[np.ndarray, np.ndarray]:
        """``range`` (``revrange`` with ``reverse``) as numpy columns ``(timestamps int64,
        values float64)``: the same answer without a Python tuple per sample (more than half
        of a 1-hour read's time). Takes ``range``'s keyword options (``count``,
        ``aggregation_type``, ``bucket_size_msec``, …). The arrays may be views of engine
        memory: treat them as read-only."""
        series = self._series(key, from_time, to_time, reverse, *_options(options))
        return series.ts, series.values

    def _range(self, key: str, from_time: int | str, to_time: int | str, reverse: bool,
               *args: Any) -> list[tuple[int, float]]:
        series = self._series(key, from_time, to_time, reverse, *args)
        return _pairs(series.ts, series.values)

    def _series(self, key: str, from_time: int | str, to_time: int | str, reverse: bool,
                *args: Any) -> Any:
        eng = self.engine
        with eng.lock:
            sid = eng.registry.sid(key)
            lo, hi, opts = _range_options(from_time, to_time, reverse, *args)
            return read.multi_range(eng, np.array([sid]), lo, hi, opts)[0]

    def mrange(self, from_time: int | str, to_time: int | str, filters: list[str],
               count: int | None = None, aggregation_type: str | None = None,
               bucket_size_msec: int | None = 0, with_labels: bool | None = False,
               filter_by_ts: list[int] | None = None, filter_by_min_value: float | None = None,
               filter_by_max_value: float | None = None, groupby: str | None = None,
               reduce: str | None = None, select_labels: list[str] | None = None,
               align: int | str | None = None, latest: bool | None = False,
               bucket_timestamp: str | None = None, empty: bool | None = False
               ) -> list[dict[str, list[Any]]]:
        return self._mrange(from_time, to_time, filters, False, count, aggregation_type,
                            bucket_size_msec, with_labels, filter_by_ts, filter_by_min_value,
                            filter_by_max_value, groupby, reduce, select_labels, align, latest,
                            bucket_timestamp, empty)

    def mrevrange(self, from_time: int | str, to_time: int | str, filters: list[str],
                  count: int | None = None, aggregation_type: str | None = None,
                  bucket_size_msec: int | None = 0, with_labels: bool | None = False,
                  filter_by_ts: list[int] | None = None,
                  filter_by_min_value: float | None = None,
                  filter_by_max_value: float | None = None, groupby: str | None = None,
                  reduce: str | None = None, select_labels: list[str] | None = None,
                  align: int | str | None = None, latest: bool | None = False,
                  bucket_timestamp: str | None = None, empty: bool | None = False
                  ) -> list[dict[str, list[Any]]]:
        return self._mrange(from_time, to_time, filters, True, count, aggregation_type,
                            bucket_size_msec, with_labels, filter_by_ts, filter_by_min_value,
                            filter_by_max_value, groupby, reduce, select_labels, align, latest,
                            bucket_timestamp, empty)

    def mrange_columns(self, from_time: int | str, to_time: int | str, filters: list[str], *,
                       reverse: bool = False, **options: Any) -> list[dict[str, list[Any]]]:
        """``mrange`` (``mrevrange`` with ``reverse``) with each series' samples as numpy
        columns ``(timestamps int64, values float64)`` instead of a list of tuples: no
        Python object per sample (100 series of a day of minutes are 144,000 tuples).
        Takes ``mrange``'s keyword options (``aggregation_type``, ``groupby``, …)."""
        unknown = set(options) - set(_MRANGE_KEYWORDS)
        if unknown:
            raise TypeError(f"unknown mrange option(s): {sorted(unknown)}")
        return self._mrange(from_time, to_time, filters, reverse,
                            *(options.get(k) for k in _MRANGE_KEYWORDS), columns=True)

    def _mrange(self, from_time: int | str, to_time: int | str, filters: Any, reverse: bool,
                count: int | None, aggregation_type: str | None, bucket_size_msec: int | None,
                with_labels: bool | None, filter_by_ts: list[int] | None,
                min_value: float | None, max_value: float | None, groupby: str | None,
                reducer: str | None, select_labels: list[str] | None, align: int | str | None,
                latest: bool | None, bucket_timestamp: str | None, empty: bool | None,
                columns: bool = False) -> list[dict[str, list[Any]]]:
        if with_labels and select_labels:
            raise InvalidArgument("cannot accept WITHLABELS and SELECT_LABELS together")
        if (groupby is None) != (reducer is None):
            raise InvalidArgument("GROUPBY and REDUCE must be given together")
        eng = self.engine
        with eng.lock:
            sids = self._select(filters)
            lo, hi, opts = _range_options(from_time, to_time, False, None, aggregation_type,
                                          bucket_size_msec, filter_by_ts, min_value, max_value,
                                          align, latest, bucket_timestamp, empty)
            if count is not None and int(count) <= 0:
                raise InvalidArgument("Invalid COUNT value")
            results = read.multi_range(eng, sids, lo, hi, opts)
            keyed = sorted(((eng.registry.key(s.sid), s) for s in results), key=lambda x: x[0])
            if groupby is not None:
                return self._group(keyed, groupby, str(reducer).lower(), reverse, count,
                                   with_labels, select_labels, columns)
            out = []
            for key, s in keyed:
                ts, vals = (s.ts[::-1], s.values[::-1]) if reverse else (s.ts, s.values)
                if count is not None:
                    ts, vals = ts[:count], vals[:count]
                labels = self._labels(s.sid, with_labels, select_labels)
                out.append({key: [labels, _samples(ts, vals, columns)]})
        return out

    def aggregate(self, keys: Sequence[str] | None, from_time: int | str, to_time: int | str,
                  aggregation_type: str, bucket_size_msec: int, *,
                  filters: list[str] | None = None, align: int = 0,
                  stitch: bool = True) -> list[dict[str, Any]]:
        """Aggregates raw series over whole buckets, reading the coarsest stored tier that
        answers each bucket exactly (see ``engine/planner.py``).

        Unlike ``range`` on a raw key, buckets whose raw samples have expired are answered
        from the tiers that keep them: with ``stitch``, at a coarser tier's own bucket size
        where no tier of the asked size reaches. The newest bucket includes every sample
        written so far.

        Args:
            keys: raw series (or None with ``filters``: the raw series matching them).
            from_time, to_time: widened to whole buckets.

        Returns:
            Per series, sorted by key: ``{"key", "from", "to", "timestamps", "values"
            (numpy arrays), "sources": [{"key", "from", "to", "bucket_ms", "exact"}]}``,
            sources oldest first.
        """
        agg = Aggregation(parse_aggregator(aggregation_type), int(bucket_size_msec), int(align))
        lo, hi = planner.align_window(_bound(from_time, True), _bound(to_time, False),
                                      agg.bucket_ms, agg.align_ms)
        eng = self.engine
        with eng.lock:
            reg = eng.registry
            if keys is None:
                if not filters:
                    raise InvalidArgument("aggregate needs keys or filters")
                sids = self._select(filters)
                sids = sids[~np.isin(sids, np.fromiter(eng.rules, np.int64, len(eng.rules)))]
            else:
                sids = np.array([reg.sid(k) for k in keys], np.int64)
                tier = [k for k, s in zip(keys, sids.tolist(), strict=True) if s in eng.rules]
                if tier:
                    raise InvalidArgument(f"{tier[0]} is a tier (a rule destination): "
                                          "aggregate reads raw series and picks tiers itself")
            results = tiered.aggregate(eng, sids, lo, hi, agg, stitch=stitch)
            out = [{"key": reg.key(r.sid), "from": lo, "to": hi, "timestamps": r.ts,
                    "values": r.values,
                    "sources": [{"key": reg.key(p.sid), "from": p.lo, "to": p.hi,
                                 "bucket_ms": p.bucket_ms, "exact": p.exact}
                                for p in r.parts]} for r in results]
        return sorted(out, key=lambda r: r["key"])

    def _group(self, keyed: list[tuple[str, Any]], label: str, reducer: str, reverse: bool,
               count: int | None, with_labels: bool | None,
               select_labels: list[str] | None, columns: bool) -> list[dict[str, list[Any]]]:
        if reducer not in REDUCERS:
            raise InvalidArgument("Invalid reducer type")
        groups: dict[str, list[tuple[str, Any]]] = {}
        for key, s in keyed:
            value = self.engine.registry.get(s.sid).labels.get(label)
            if value is not None:
                groups.setdefault(value, []).append((key, s))
        out = []
        for value in sorted(groups):
            members = groups[value]
            red = reduce_group([s for _, s in members], reducer)
            ts, vals = (red.ts[::-1], red.values[::-1]) if reverse else (red.ts, red.values)
            if count is not None:
                ts, vals = ts[:count], vals[:count]
            labels: dict[str, str | None] = {}
            if with_labels:
                labels = {label: value, "__reducer__": reducer,
                          "__source__": ",".join(k for k, _ in members)}
            elif select_labels:
                for name in select_labels:
                    vs = {self.engine.registry.get(s.sid).labels.get(name) for _, s in members}
                    labels[name] = vs.pop() if len(vs) == 1 else None
            out.append({f"{label}={value}": [labels, _samples(ts, vals, columns)]})
        return out

    def _select(self, filters: Any) -> np.ndarray:
        if isinstance(filters, dict):
            matchers = matchers_from_dict(filters)
        else:
            matchers = parse_filters(list(filters))
        return self.engine.registry.index.select(matchers)

    def _labels(self, sid: int, with_labels: bool | None,
                select_labels: list[str] | None) -> dict[str, str | None]:
        labels = self.engine.registry.get(sid).labels
        if with_labels:
            return dict(labels)
        if select_labels:
            return {name: labels.get(name) for name in select_labels}
        return {}

    def get(self, key: str, latest: bool | None = False) -> tuple[int, float] | None:
        eng = self.engine
        with eng.lock:
            return read.last_sample(eng, eng.registry.sid(key), bool(latest))

    def mget(self, filters: list[str], with_labels: bool | None = False,
             select_labels: list[str] | None = None, latest: bool | None = False
             ) -> list[dict[str, list[Any]]]:
        if with_labels and select_labels:
            raise InvalidArgument("cannot accept WITHLABELS and SELECT_LABELS together")
        eng = self.engine
        with eng.lock:
            out = []
            sids = self._select(filters)
            for key, sid in sorted((eng.registry.key(s), s) for s in sids.tolist()):
                sample = read.last_sample(eng, sid, bool(latest))
                labels = self._labels(sid, with_labels, select_labels)
                out.append({key: [labels, *(sample if sample else (None, None))]})
            return out

    def info(self, key: str) -> dict[str, Any]:
        """``TS.INFO`` fields (``total_samples``, ``first_timestamp``, ``labels``, ``rules``…)
        plus the series' own storage: ``memory_usage``, the bytes of its rows not yet in a
        block, and ``disk_bytes``, each block's size shared out among its series by rows
        (a tier: of its stream of bucket states, shared with the tier's sibling rules)."""
        eng = self.engine
        with eng.lock:
            return read.info(eng, eng.registry.sid(key))

    def queryindex(self, filters: list[str]) -> list[str]:
        eng = self.engine
        with eng.lock:
            return sorted(eng.registry.key(s) for s in self._select(filters).tolist())

    def keys(self) -> list[str]:
        with self.engine.lock:
            return sorted(self.engine.registry.by_key)

    def exists(self, key: str) -> bool:
        return key in self.engine.registry.by_key

    def describe(self, key: str) -> dict[str, Any]:
        """The settings half of ``info`` (``labels``, ``retention_msecs``, ``duplicate_policy``,
        ``source_key``, ``rules`` as ``[dest, bucket_ms, AGGREGATOR, align_ms]``) without
        reading samples, so it is cheap enough per series of a listing or per query.

        Raises:
            SeriesNotFound: ``key`` does not exist.
        """
        eng = self.engine
        with eng.lock:
            reg = eng.registry
            sid = reg.sid(key)
            meta = reg.get(sid)
            policy = int(reg.policy[sid])
            return {
                "labels": dict(meta.labels),
                "retention_msecs": int(reg.retention_ms[sid]),
                "duplicate_policy": None if policy < 0 else DuplicatePolicy(policy).name.lower(),
                "source_key": None if meta.source is None else reg.key(meta.source),
                "rules": [[reg.key(d), eng.rules[d].bucket_ms, eng.rules[d].aggregator.upper(),
                           eng.rules[d].align_ms] for d in meta.rules],
            }

    # -- tier policies -----------------------------------------------------------------------
    def set_policy(self, policy: dict[str, Any],
                   progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Adds or replaces a tier policy (see ``engine/policies.py``) and applies it to the
        series it governs: missing tiers are created and backfilled, changed ones rebuilt.

        ``policy``: ``{"name", "filter": ["type=temperature"], "raw_retention": "7d",
        "tiers": [{"name": "1m", "bucket": "1min", "retention": "365d", "aggregators":
        ["avg", "min", "max"]}, …]}`` or ``{"name", "filter", "preset": "seed"}``.
        ``progress(done, total)`` is called per thousand series.

        Returns:
            ``{"series": governed, "tiers_created": n, "tiers_rebuilt_or_removed": [names]}``.
        """
        return self.engine.set_policy(policies.parse_policy(policy), progress)

    def drop_policy(self, name: str, delete_tiers: bool = False) -> None:
        """Forgets a policy; its tiers stay (as plain rules) unless ``delete_tiers``."""
        self.engine.drop_policy(name, delete_tiers=delete_tiers)

    def policies(self) -> list[dict[str, Any]]:
        """Every policy, in the order they apply (the first matching one governs a series)."""
        with self.engine.lock:
            return [p.to_json() for p in self.engine.policies.values()]

    def batch(self) -> AbstractContextManager[None]:
        """Groups the writes made inside into one durable commit (one fsync at the end).

        ``with db.batch(): ...`` makes thousands of ``create``/``createrule``/``add`` calls
        cost one log sync instead of one each; each write is acknowledged when the block
        exits. The database lock is held meanwhile, so keep the block short.
        """
        return self.engine.batch()

    def checkpoint(self) -> None:
        """Writes memory to compressed blocks now and truncates the log."""
        self.engine.checkpoint()


def _pairs(ts: np.ndarray, values: np.ndarray) -> list[tuple[int, float]]:
    """redis-py's reply shape: a list of (int ms, float) tuples, built with the cyclic
    garbage collector paused.

    A 1-hour reply is 3,600 tuples: allocating them triggers a young-generation collection
    every 700 and promotes the half-built list to older generations, which then triggers full
    collections; that cost a third of the reply's time and most of its tail. The tuples hold
    only ints and floats, so no cycle can form while the collector waits.

    NOTE(query-fast): ``gc.disable`` is process-wide; it is only touched when the collector
    is on, and re-enabled right after (a concurrent reply finding it off leaves it alone).
    """
    if not gc.isenabled() or len(ts) < _GC_PAUSE_ROWS:
        return list(zip(ts.tolist(), values.tolist(), strict=True))
    gc.disable()
    try:
        return list(zip(ts.tolist(), values.tolist(), strict=True))
    finally:
        gc.enable()


def _samples(ts: np.ndarray, values: np.ndarray, columns: bool) -> Any:
    if columns:
        return np.ascontiguousarray(ts), np.ascontiguousarray(values)
    return _pairs(ts, values)


def _value(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidSampleError("invalid value") from None
    if not np.isfinite(v):
        raise InvalidSampleError("invalid value")
    return v


def _incr_value(value: Any) -> float:
    try:
        return _value(value)
    except InvalidSampleError:
        raise InvalidSampleError("invalid increase/decrease value") from None


def _raise_first(res: AppendResult) -> None:
    code = Status(int(res.status[0]))
    if code == Status.OK:
        return
    if code == Status.NOT_FOUND:
        raise SeriesNotFound()
    raise _ERRORS.get(code, InvalidSampleError)(MESSAGES[code])


# ``_mrange``'s arguments after ``reverse``, in order.
_MRANGE_KEYWORDS = ("count", "aggregation_type", "bucket_size_msec", "with_labels",
                    "filter_by_ts", "filter_by_min_value", "filter_by_max_value", "groupby",
                    "reduce", "select_labels", "align", "latest", "bucket_timestamp", "empty")
_RANGE_KEYWORDS = ("count", "aggregation_type", "bucket_size_msec", "filter_by_ts",
                   "filter_by_min_value", "filter_by_max_value", "align", "latest",
                   "bucket_timestamp", "empty")


def _options(options: dict[str, Any]) -> list[Any]:
    """``range``'s keyword options in ``_range_options``' order."""
    unknown = set(options) - set(_RANGE_KEYWORDS)
    if unknown:
        raise TypeError(f"unknown range option(s): {sorted(unknown)}")
    return [options.get(k) for k in _RANGE_KEYWORDS]


def _range_options(from_time: int | str, to_time: int | str, reverse: bool,
                   count: int | None, aggregation_type: str | None,
                   bucket_size_msec: int | None, filter_by_ts: list[int] | None,
                   min_value: float | None, max_value: float | None,
                   align: int | str | None, latest: bool | None,
                   bucket_timestamp: str | None, empty: bool | None
                   ) -> tuple[int, int, read.RangeOptions]:
    lo, hi = _bound(from_time, True), _bound(to_time, False)
    if count is not None and int(count) <= 0:
        raise InvalidArgument("Invalid COUNT value")
    if (min_value is None) != (max_value is None):
        raise InvalidArgument("FILTER_BY_VALUE one or more arguments are missing")
    agg = None
    if aggregation_type is not None:
        align_ms = 0
        if align in ("-", "start"):
            if from_time == "-":
                raise InvalidArgument("start alignment can only be used with explicit start "
                                      "timestamp")
            align_ms = lo
        elif align in ("+", "end"):
            if to_time == "+":
                raise InvalidArgument("end alignment can only be used with explicit end "
                                      "timestamp")
            align_ms = hi
        elif align is not None:
            try:
                align_ms = int(align)
            except ValueError:
                raise InvalidArgument("unknown ALIGN parameter") from None
        bt = {None: "-", "-": "-", "start": "-", "+": "+", "end": "+", "~": "~", "mid": "~"}
        if bucket_timestamp not in bt:
            raise InvalidArgument("unknown BUCKETTIMESTAMP parameter")
        agg = Aggregation(parse_aggregator(aggregation_type), int(bucket_size_msec or 0),
                          align_ms, bt[bucket_timestamp], bool(empty))
    elif align is not None:
        raise InvalidArgument("ALIGN parameter can only be used with AGGREGATION")
    return lo, hi, read.RangeOptions(
        agg, None if filter_by_ts is None else np.asarray(filter_by_ts, np.int64),
        min_value, max_value, None if count is None else int(count), reverse, bool(latest))
