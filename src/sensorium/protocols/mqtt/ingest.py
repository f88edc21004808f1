"""A flush of MQTT messages → one columnar write (write path, steps 0–1).

``Router`` maps topics to routes (cached per distinct topic); :func:`to_columns` turns the
messages of one flush into key/timestamp/value columns and per-message errors, parsing every
JSON payload of the flush in one ``payload.parse_json`` call and the line-protocol payloads
of each topic as one body; keys are numbered once per message, not per row.
:func:`write_columns` looks the keys up once, creates the series seen for the first time
(``create_many``, with the labels of their topic and reading) and writes the rows by series
id as one durable commit (``madd``).

Only ``write_columns`` touches the database; the rest is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ...database import Database
from . import payload
from .options import Subscription
from .topics import SENSOR_ID, Resolved, Route, TopicError

UNKNOWN_TOPIC = "unknown_topic"
NO_SENSOR_ID = "no_sensor_id"
TOPIC_CACHE_SIZE = 200_000  # distinct topics remembered; beyond it the cache starts over


class Message(NamedTuple):
    """A received PUBLISH: raw topic, payload, packet id, QoS, connection generation."""

    topic: bytes
    payload: bytes
    mid: int = 0
    qos: int = 0
    generation: int = 0


class _Topic(NamedTuple):
    sub: int  # index of the subscription
    resolved: Resolved
    json: bool  # the subscription's format is JSON
    plain: bool  # the key is exactly {sensor_id}: a reading's own sensor_id is the key


class Router:
    """Topic → (subscription, key, labels), first matching subscription wins. Not
    thread-safe: one writer thread owns it."""

    def __init__(self, subscriptions: Sequence[Subscription]) -> None:
        self.subscriptions = tuple(subscriptions)
        self.routes: tuple[Route, ...] = tuple(s.route() for s in subscriptions)
        self._cache: dict[bytes, _Topic | str] = {}

    def resolve(self, topic: bytes) -> _Topic | str:
        """The topic's route, or the reason it fits none."""
        hit = self._cache.get(topic)
        if hit is None:
            hit = self._resolve(topic)
            if len(self._cache) >= TOPIC_CACHE_SIZE:
                self._cache.clear()
            self._cache[topic] = hit
        return hit

    def _resolve(self, raw: bytes) -> _Topic | str:
        try:
            topic = raw.decode()
        except UnicodeDecodeError:
            return f"topic {raw!r} is not UTF-8"
        reasons = []
        for i, route in enumerate(self.routes):
            try:
                return _Topic(i, route.resolve(topic), self.subscriptions[i].format == "json",
                              route.key_is_field == SENSOR_ID)
            except TopicError as exc:
                reasons.append(str(exc))
        return reasons[0] if len(reasons) == 1 else (
            f"topic {topic!r} fits none of the templates "
            f"{[r.template.text for r in self.routes]}")


@dataclass(slots=True)
class Columns:
    """Rows to write, and what was refused before the engine.

    Row ``i`` goes to series ``series[key_idx[i]]`` (``series`` holds each key a message
    named once, so a batch of 100 readings costs one key lookup, not 100; it may repeat a
    key, and every key in it has rows). ``msg[i]`` is the index of the message row ``i``
    came from; ``labels_of(keys)`` gives the labels of new series (asked only for keys that
    do not exist yet); ``errors`` are ``(message index, reason, explanation)``.
    """

    series: np.ndarray
    key_idx: np.ndarray
    ts_ms: np.ndarray
    values: np.ndarray
    msg: np.ndarray
    labels_of: Callable[[list[str]], list[dict[str, str]]]
    errors: list[payload.PayloadError] = field(default_factory=list)

    @property
    def keys(self) -> np.ndarray:
        """The series key of every row (an object column; for tests and logs)."""
        return self.series[self.key_idx]


def to_columns(messages: Sequence[Message], router: Router, now_ms: int) -> Columns:
    """Parses one flush of messages (pure apart from the router's cache)."""
    errors: list[payload.PayloadError] = []
    resolve, cache = router.resolve, router._cache
    found = [cache.get(m.topic) or resolve(m.topic) for m in messages]
    topics: list[_Topic | None] = [None if t.__class__ is str else t for t in found]  # type: ignore[misc]
    json_msgs = [i for i, t in enumerate(topics) if t is not None and t.json]
    line_groups: dict[int, list[int]] = {}  # by subscription (its precision)
    if len(json_msgs) < len(messages):
        for i, t in enumerate(found):
            if isinstance(t, str):
                errors.append(payload.PayloadError(i, UNKNOWN_TOPIC, t))
            elif not t.json:
                line_groups.setdefault(t.sub, []).append(i)
    parts = []
    if json_msgs:
        parts.append(_json(messages, json_msgs, topics, router, now_ms, errors))
    for idx in line_groups.values():
        parts.append(_lines(messages, idx, topics, router, now_ms, errors))
    errors.sort(key=lambda e: e.msg)
    if not parts:
        return Columns(np.empty(0, object), np.empty(0, np.int64), np.empty(0, np.int64),
                       np.empty(0), np.empty(0, np.int64), lambda keys: [{} for _ in keys],
                       errors)
    if len(parts) == 1:
        series, key_idx, ts, values, msg, _ = parts[0]
    else:
        offsets = np.cumsum([0] + [len(p[0]) for p in parts[:-1]])
        series = np.concatenate([p[0] for p in parts])
        key_idx = np.concatenate([p[1] + off for p, off in zip(parts, offsets, strict=True)])
        ts = np.concatenate([p[2] for p in parts])
        values = np.concatenate([p[3] for p in parts])
        msg = np.concatenate([p[4] for p in parts])
    finders = [p[5] for p in parts]

    def labels_of(wanted: list[str]) -> list[dict[str, str]]:
        out = []
        for key in wanted:
            for find in finders:
                found = find(key)
                if found is not None:
                    out.append(found)
                    break
            else:
                out.append({})
        return out

    return Columns(series, key_idx, ts, values, msg, labels_of, errors)


# (series, key_idx, ts_ms, values, msg, labels of a key this part brought or None)
_Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
              Callable[[str], dict[str, str] | None]]


def _json(messages: Sequence[Message], idx: list[int], topics: list[_Topic | None],
          router: Router, now_ms: int, errors: list[payload.PayloadError]) -> _Part:
    rows = payload.parse_json([messages[i].payload for i in idx], now_ms)
    where = np.asarray(idx, np.int64)
    errors.extend(payload.PayloadError(int(where[e.msg]), e.reason, e.message)
                  for e in rows.errors)
    msg = where[rows.msg]
    # Keys are numbered as they are first seen: per message its topic's key, then the
    # readings' own sensor_ids (rare), so rows take their key by index.
    mine = [topics[i] for i in idx]
    topic_keys = [t.resolved.key for t in mine]  # type: ignore[union-attr]
    number = {k: n for n, k in enumerate(dict.fromkeys(topic_keys))}
    msg_key = np.fromiter(map(number.__getitem__, topic_keys), np.int64, len(topic_keys))
    key_idx = msg_key[rows.msg]
    if rows.sensor_id is not None:
        own = np.flatnonzero(np.not_equal(rows.sensor_id, None))
        plain = np.array([t.plain for t in mine], bool)[rows.msg[own]]  # type: ignore[union-attr]
        direct = own[plain]  # the reading's sensor_id is the key: numbered in C
        sids = rows.sensor_id[direct].tolist()
        for key in dict.fromkeys(sids):
            number.setdefault(key, len(number))
        key_idx[direct] = np.fromiter(map(number.__getitem__, sids), np.int64, len(sids))
        for r in own[~plain].tolist():  # composite key templates: rare
            t = mine[int(rows.msg[r])]
            assert t is not None
            key = router.routes[t.sub].key_for({**t.resolved.fields,
                                                SENSOR_ID: rows.sensor_id[r]})
            key_idx[r] = number.setdefault(key, len(number))
    keep: np.ndarray | None = None
    if None in number:
        keyless = np.flatnonzero(key_idx == number[None])
        if len(keyless):
            for m in np.unique(msg[keyless]).tolist():
                errors.append(payload.PayloadError(
                    m, NO_SENSOR_ID,
                    "no sensor_id: neither the topic nor the reading names one"))
            keep = np.ones(len(key_idx), bool)
            keep[keyless] = False
    series = np.array(list(number), object)
    row_of = np.flatnonzero(keep) if keep is not None else None
    if row_of is not None:
        key_idx, ts, values, msg = (key_idx[row_of], rows.ts_ms[row_of],
                                    rows.values[row_of], msg[row_of])
    else:
        ts, values = rows.ts_ms, rows.values
    series, key_idx = _used(series, key_idx)
    first: dict[str, int] = {}

    def find(key: str) -> dict[str, str] | None:
        if not first:  # built once, only when a flush creates series
            _, at = np.unique(key_idx, return_index=True)
            for k, r in zip(series[key_idx[at]].tolist(), at.tolist(), strict=True):
                first.setdefault(k, r if row_of is None else int(row_of[r]))
        r = first.get(key)
        if r is None:
            return None
        t = topics[int(where[rows.msg[r]])]
        assert t is not None
        return {**t.resolved.labels, **rows.labels.get(r, {})}

    return series, key_idx, ts, values, msg, find


def _used(series: np.ndarray, key_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``series`` without the keys no row uses (a message all of whose readings were bad
    must not create its series), ``key_idx`` renumbered to match."""
    used = np.bincount(key_idx, minlength=len(series)) > 0
    if used.all():
        return series, key_idx
    return series[used], (np.cumsum(used) - 1)[key_idx]


def _lines(messages: Sequence[Message], idx: list[int], topics: list[_Topic | None],
           router: Router, now_ms: int, errors: list[payload.PayloadError]) -> _Part:
    """The line-protocol messages of one subscription, parsed as one body."""
    t0 = topics[idx[0]]
    assert t0 is not None
    sub = router.subscriptions[t0.sub]
    batch, errs = payload.parse_lines([messages[i].payload for i in idx], sub.precision, now_ms)
    errors.extend(payload.PayloadError(idx[e.msg], e.reason, e.message) for e in errs)
    # The parser does not say which message a row came from; rows are attributed to the
    # first message (used only to name a refused row's topic in the log).
    msg = np.full(len(batch.keys), idx[0], np.int64)
    topic_of: dict[str, int] = {}

    def find(key: str) -> dict[str, str] | None:
        own = batch.labels.get(key)
        if own is None:
            return None
        if not topic_of:  # new series: which topic brought each key (parsed per topic)
            by_topic: dict[bytes, list[int]] = {}
            for i in idx:
                by_topic.setdefault(messages[i].topic, []).append(i)
            for group in by_topic.values():
                keys, _ = payload.parse_lines([messages[i].payload for i in group],
                                              sub.precision, now_ms)
                for k in keys.keys.tolist():
                    topic_of.setdefault(k, group[0])
        t = topics[topic_of.get(key, idx[0])]
        assert t is not None
        return {**t.resolved.labels, **own}

    keys = np.asarray(batch.keys, object)
    return keys, np.arange(len(keys)), batch.ts_ms, batch.values, msg, find


def write_columns(db: Database, cols: Columns) -> np.ndarray:
    """Writes the rows as one durable commit; returns each row's ``Status``.

    Series that do not exist are created first (one more commit) with ``cols.labels_of``,
    so tier policies and label queries see them; an existing series keeps its labels. Keys
    are looked up once per entry of ``cols.series`` and the rows written by series id.
    Raises what the engine raises (e.g. ``EngineClosed``): then nothing may be acknowledged.
    """
    if not len(cols.ts_ms):
        return np.empty(0, np.int8)
    sids = db.series_ids(cols.series, create=False)
    missing = np.flatnonzero(sids < 0)
    if len(missing):
        new = list(dict.fromkeys(cols.series[missing].tolist()))
        db.create_many(new, cols.labels_of(new))
        sids[missing] = db.series_ids(cols.series[missing], create=False)
    return db.madd(sids[cols.key_idx], cols.ts_ms, cols.values).status
