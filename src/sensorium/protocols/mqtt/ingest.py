"""A flush of MQTT messages → one columnar write (write path, steps 0–1).

``Router`` maps topics to routes (cached per distinct topic); :func:`to_columns` turns the
messages of one flush into key/timestamp/value columns and per-message errors, parsing every
JSON payload of the flush in one ``payload.parse_json`` call and the line-protocol payloads
of each topic as one body; :func:`write_columns` writes them as one durable commit
(``db.batch()``: one ``madd``, plus ``create_many`` and a second ``madd`` for series seen for
the first time, with the labels of their topic and reading).

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

    ``msg[i]`` is the index of the message row ``i`` came from; ``labels_of(keys)`` gives
    the labels of new series (asked only for keys that do not exist yet); ``errors`` are
    ``(message index, reason, explanation)``.
    """

    keys: np.ndarray
    ts_ms: np.ndarray
    values: np.ndarray
    msg: np.ndarray
    labels_of: Callable[[list[str]], list[dict[str, str]]]
    errors: list[payload.PayloadError] = field(default_factory=list)


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
        return Columns(np.empty(0, object), np.empty(0, np.int64), np.empty(0),
                       np.empty(0, np.int64), lambda keys: [{} for _ in keys], errors)
    keys = np.concatenate([p[0] for p in parts])
    ts = np.concatenate([p[1] for p in parts])
    values = np.concatenate([p[2] for p in parts])
    msg = np.concatenate([p[3] for p in parts])
    finders = [p[4] for p in parts]

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

    return Columns(keys, ts, values, msg, labels_of, errors)


_Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
              Callable[[str], dict[str, str] | None]]


def _json(messages: Sequence[Message], idx: list[int], topics: list[_Topic | None],
          router: Router, now_ms: int, errors: list[payload.PayloadError]) -> _Part:
    rows = payload.parse_json([messages[i].payload for i in idx], now_ms)
    where = np.asarray(idx, np.int64)
    errors.extend(payload.PayloadError(int(where[e.msg]), e.reason, e.message)
                  for e in rows.errors)
    msg = where[rows.msg]
    # Per message of this part: the topic's key, and whether the key is the sensor_id itself.
    mine = [topics[i] for i in idx]
    topic_key = np.array([t.resolved.key for t in mine], object)  # type: ignore[union-attr]
    plain = np.array([t.plain for t in mine], bool)  # type: ignore[union-attr]
    keys = topic_key[rows.msg]
    own = np.flatnonzero(np.not_equal(rows.sensor_id, None))
    if len(own):
        direct = own[plain[rows.msg[own]]]
        keys[direct] = rows.sensor_id[direct]
        for r in own[~plain[rows.msg[own]]].tolist():  # composite key templates: rare
            t = topics[int(msg[r])]
            assert t is not None
            keys[r] = router.routes[t.sub].key_for(
                {**t.resolved.fields, SENSOR_ID: rows.sensor_id[r]})
    keyless = np.flatnonzero(np.equal(keys, None))
    if len(keyless):
        for m in np.unique(msg[keyless]).tolist():
            errors.append(payload.PayloadError(
                m, NO_SENSOR_ID, "no sensor_id: neither the topic nor the reading names one"))
        keep = np.ones(len(keys), bool)
        keep[keyless] = False
        kept = np.flatnonzero(keep)
    else:
        kept = None

    first: dict[str, int] = {}

    def find(key: str) -> dict[str, str] | None:
        if not first:  # built once, only when a flush creates series
            for r in (range(len(keys)) if kept is None else kept.tolist()):
                first.setdefault(keys[r], r)
        r = first.get(key)
        if r is None:
            return None
        t = topics[int(msg[r])]
        assert t is not None
        return {**t.resolved.labels, **rows.labels.get(r, {})}

    if kept is not None:
        return keys[kept], rows.ts_ms[kept], rows.values[kept], msg[kept], find
    return keys, rows.ts_ms, rows.values, msg, find


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

    return batch.keys, batch.ts_ms, batch.values, msg, find


def write_columns(db: Database, cols: Columns) -> np.ndarray:
    """Writes the rows as one durable commit; returns each row's ``Status``.

    Series that do not exist are created with ``cols.labels_of`` (so tier policies and
    label queries see them); an existing series keeps its labels. Raises what the engine
    raises (e.g. ``EngineClosed``): then nothing may be acknowledged.
    """
    if not len(cols.keys):
        return np.empty(0, np.int8)
    return db.madd(cols.keys, cols.ts_ms, cols.values, new_labels=cols.labels_of).status
