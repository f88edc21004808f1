"""TS.* queries: argument parsing → one ``Database`` call → RESP2 or RESP3 reply shape.

Shapes (reference §3): RESP2 answers arrays (labels as ``[[name, value]...]``), RESP3 answers
maps for TS.INFO, TS.MGET and TS.MRANGE, a set for TS.QUERYINDEX and doubles for values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .codec import Raw, RespSet, Simple, encode_samples
from .registry import command
from .ts_args import bound, filters, find, label_options, range_options

if TYPE_CHECKING:
    from .session import Session

_G = "timeseries"
_R = ("readonly", "module")


def _labels(labels: dict[str, str | None], proto: int) -> Any:
    return dict(labels) if proto == 3 else [[k, v] for k, v in labels.items()]


def _range(s: Session, args: list[str], reverse: bool) -> Any:
    lo, hi = bound(args[2], True), bound(args[3], False)
    opts = range_options(args, 4, len(args))
    query = s.db.revrange if reverse else s.db.range
    return Raw(encode_samples(query(args[1], lo, hi, **opts), s.proto))


@command("TS.RANGE", -4, flags=_R, keys=(1, 1, 1), group=_G,
         summary="Query a range in forward direction")
def ts_range(s: Session, args: list[str]) -> Any:
    return _range(s, args, False)


@command("TS.REVRANGE", -4, flags=_R, keys=(1, 1, 1), group=_G,
         summary="Query a range in reverse direction")
def ts_revrange(s: Session, args: list[str]) -> Any:
    return _range(s, args, True)


def _mrange(s: Session, args: list[str], reverse: bool) -> Any:
    f, exprs, group = filters(args, args[0])
    lo, hi = bound(args[1], True), bound(args[2], False)
    opts = range_options(args, 3, f)
    opts.update(label_options(args, f))
    if group is not None:
        opts["groupby"], opts["reduce"] = group
    query = s.db.mrevrange if reverse else s.db.mrange
    result = query(lo, hi, exprs, **opts)
    if s.proto == 2:
        return [[key, _labels(labels, 2), Raw(encode_samples(samples, 2))]
                for row in result for key, (labels, samples) in row.items()]
    out: dict[str, Any] = {}
    if group is None:
        meta = {"aggregators": [opts["aggregation_type"]] if "aggregation_type" in opts else []}
        for row in result:
            for key, (labels, samples) in row.items():
                out[key] = [dict(labels), meta, Raw(encode_samples(samples, 3))]
        return out
    sources = _group_sources(s, exprs, group[0])
    for row in result:
        for key, (labels, samples) in row.items():
            out[key] = [dict(labels), {"reducers": [group[1]]},
                        {"sources": sources.get(key, [])}, Raw(encode_samples(samples, 3))]
    return out


def _group_sources(s: Session, exprs: list[str], label: str) -> dict[str, list[str]]:
    """``label=value`` → the keys of that group (RESP3 GROUPBY replies list them)."""
    groups: dict[str, list[str]] = {}
    for row in s.db.mget(exprs, with_labels=True):
        for key, (labels, *_) in row.items():
            if label in labels:
                groups.setdefault(f"{label}={labels[label]}", []).append(key)
    return groups


@command("TS.MRANGE", -4, flags=_R, group=_G,
         summary="Query a range across multiple time series by filters in forward direction")
def ts_mrange(s: Session, args: list[str]) -> Any:
    return _mrange(s, args, False)


@command("TS.MREVRANGE", -4, flags=_R, group=_G,
         summary="Query a range across multiple time series by filters in reverse direction")
def ts_mrevrange(s: Session, args: list[str]) -> Any:
    return _mrange(s, args, True)


def _sample(sample: Any) -> list[Any]:
    return [] if sample is None else [int(sample[0]), float(sample[1])]


@command("TS.GET", -2, flags=_R, keys=(1, 1, 1), group=_G,
         summary="Get the sample with the highest timestamp from a given time series")
def ts_get(s: Session, args: list[str]) -> Any:
    if len(args) > 3:
        from .errors import wrong_arity
        raise wrong_arity("ts.get")
    return _sample(s.db.get(args[1], latest=find(args, "LATEST", 2) >= 0))


@command("TS.MGET", -3, flags=_R, group=_G,
         summary="Get the sample with the highest timestamp from each time series matching "
                 "a specific filter")
def ts_mget(s: Session, args: list[str]) -> Any:
    f, exprs, _ = filters(args, "ts.mget")
    opts = label_options(args, f)
    latest = find(args, "LATEST", 1, f) >= 0
    result = s.db.mget(exprs, latest=latest, **opts)
    rows = [(key, labels, None if ts is None else (ts, value))
            for row in result for key, (labels, ts, value) in row.items()]
    if s.proto == 2:
        return [[key, _labels(labels, 2), _sample(sample)] for key, labels, sample in rows]
    return {key: [dict(labels), _sample(sample)] for key, labels, sample in rows}


@command("TS.INFO", -2, flags=_R, keys=(1, 1, 1), group=_G,
         summary="Returns information and statistics for a time series")
def ts_info(s: Session, args: list[str]) -> Any:
    if len(args) > 3:
        from .errors import wrong_arity
        raise wrong_arity("ts.info")
    info = s.db.info(args[1])  # DEBUG is accepted and ignored: chunks are not Redis chunks
    rules = info["rules"]
    policy = info["duplicate_policy"]
    return {
        Simple("totalSamples"): int(info["total_samples"]),
        Simple("memoryUsage"): int(info["memory_usage"]),
        Simple("firstTimestamp"): int(info["first_timestamp"]),
        Simple("lastTimestamp"): int(info["last_timestamp"]),
        Simple("retentionTime"): int(info["retention_msecs"]),
        Simple("chunkCount"): int(info["chunk_count"]),
        Simple("chunkSize"): int(info["chunk_size"]),
        Simple("chunkType"): Simple(info["chunk_type"]),
        Simple("duplicatePolicy"): None if policy is None else Simple(policy),
        Simple("labels"): _labels(info["labels"], s.proto),
        Simple("sourceKey"): info["source_key"],
        Simple("rules"): ({d: [int(b), Simple(a), int(al)] for d, b, a, al in rules}
                          if s.proto == 3 else
                          [[d, int(b), Simple(a), int(al)] for d, b, a, al in rules]),
        Simple("ignoreMaxTimeDiff"): int(info["ignore_max_time_diff"]),
        Simple("ignoreMaxValDiff"): float(info["ignore_max_val_diff"]),
    }


@command("TS.QUERYINDEX", -2, flags=_R, group=_G,
         summary="Get all time series keys matching a filter list")
def ts_queryindex(s: Session, args: list[str]) -> Any:
    keys = s.db.queryindex(args[1:])
    return RespSet(keys) if s.proto == 3 else keys
