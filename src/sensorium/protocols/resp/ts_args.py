"""RedisTimeSeries argument parsing, with its quirks (reference §2, §3).

Options of TS.CREATE/ALTER/ADD/INCRBY are *searched* in the argument list rather than read
in order: keywords are case-insensitive, the first occurrence wins, unknown words are
ignored, and ``LABELS`` takes every argument after it as name/value pairs (an odd trailing
name is dropped) while options found among those are still applied. Range queries search
their keywords the same way. Pure functions: they return keyword arguments for ``Database``.
"""

from __future__ import annotations

from typing import Any

from ...errors import InvalidArgument
from ...model import REDUCERS, DuplicatePolicy, parse_aggregator
from .errors import wrong_arity
from .numbers import TS_NEGATIVE, TS_OK, timestamp_status, value_or_none

CHUNK_MIN, CHUNK_MAX = 48, 1_048_576
MRANGE_KEYWORDS = frozenset({
    "LATEST", "FILTER_BY_TS", "FILTER_BY_VALUE", "WITHLABELS", "SELECTED_LABELS", "COUNT",
    "ALIGN", "AGGREGATION", "BUCKETTIMESTAMP", "EMPTY", "FILTER", "GROUPBY", "REDUCE",
})


def find(args: list[str], keyword: str, start: int = 1, stop: int | None = None) -> int:
    """Index of the first ``keyword`` (case-insensitive) in ``args[start:stop]``, or -1."""
    for i in range(start, len(args) if stop is None else stop):
        if args[i].upper() == keyword:
            return i
    return -1


def parse_int(text: str) -> int | None:
    """Redis' strict ``string2ll``: no sign but ``-``, no spaces, no leading zeros."""
    status, value = timestamp_status(text)
    if status == TS_NEGATIVE:
        return int(text)
    return value if status == TS_OK else None


def _after(args: list[str], i: int, n: int = 1) -> list[str] | None:
    return args[i + 1 : i + 1 + n] if i + n < len(args) else None


def series_options(args: list[str], start: int, *, alter: bool = False) -> dict[str, Any]:
    """TS.CREATE/ALTER/ADD/INCRBY options as ``Database.create``/``alter`` keywords."""
    opts: dict[str, Any] = {}
    i = find(args, "RETENTION", start)
    if i >= 0:
        got = _after(args, i)
        ms = parse_int(got[0]) if got else None
        if ms is None or ms < 0:
            raise InvalidArgument("Couldn't parse RETENTION")
        opts["retention_msecs"] = ms
    i = -1 if alter else find(args, "ENCODING", start)  # ALTER ignores ENCODING entirely
    if i >= 0:
        got = _after(args, i)
        if not got or got[0].upper() not in ("COMPRESSED", "UNCOMPRESSED"):
            raise InvalidArgument("unknown ENCODING parameter")
    i = find(args, "CHUNK_SIZE", start)
    if i >= 0:
        got = _after(args, i)
        size = parse_int(got[0]) if got else None
        if size is None:
            raise InvalidArgument("Couldn't parse CHUNK_SIZE")
        if size % 8 or not CHUNK_MIN <= size <= CHUNK_MAX:
            raise InvalidArgument("CHUNK_SIZE value must be a multiple of 8 in the range "
                                  "[48 .. 1048576]")
        opts["chunk_size"] = size
    policy = duplicate_policy(args, "DUPLICATE_POLICY", start)
    if policy is not None:
        opts["duplicate_policy"] = policy
    i = find(args, "IGNORE", start)
    if i >= 0:
        got = _after(args, i, 2)
        t = parse_int(got[0]) if got else None
        v = value_or_none(got[1]) if got else None
        if t is None or v is None:
            raise InvalidArgument("Couldn't parse IGNORE")
        if t < 0 or v < 0:
            raise InvalidArgument("IGNORE arguments cannot be negative")
        opts["ignore_max_time_diff"] = t
        opts["ignore_max_val_diff"] = v
    i = find(args, "LABELS", start)
    if i >= 0:
        rest = args[i + 1 :]
        opts["labels"] = dict(zip(rest[0::2], rest[1::2], strict=False))
        if alter is False and not opts["labels"]:
            del opts["labels"]
    return opts


def duplicate_policy(args: list[str], keyword: str, start: int) -> str | None:
    i = find(args, keyword, start)
    if i < 0:
        return None
    got = _after(args, i)
    if not got:
        raise InvalidArgument("Unknown DUPLICATE_POLICY")
    DuplicatePolicy.parse(got[0])  # raises InvalidArgument("Unknown DUPLICATE_POLICY")
    return got[0].lower()


def bound(text: str, low: bool) -> int | str:
    """A range bound: ``-``/``+`` or a non-negative integer."""
    if text in ("-", "+"):
        return text
    value = parse_int(text)
    if value is None or value < 0:
        raise InvalidArgument("wrong fromTimestamp" if low else "wrong toTimestamp")
    return value


def range_options(args: list[str], start: int, stop: int) -> dict[str, Any]:
    """TS.RANGE-family options found in ``args[start:stop]`` as ``Database.range`` keywords."""
    opts: dict[str, Any] = {}
    if find(args, "LATEST", start, stop) >= 0:
        opts["latest"] = True
    i = find(args, "FILTER_BY_TS", start, stop)
    if i >= 0:
        stamps = []
        for text in args[i + 1 : stop]:
            ts = parse_int(text)
            if ts is None:
                break
            stamps.append(ts)
        if not stamps:
            raise InvalidArgument("FILTER_BY_TS one or more arguments are missing")
        opts["filter_by_ts"] = stamps
    i = find(args, "FILTER_BY_VALUE", start, stop)
    if i >= 0:
        if i + 2 >= stop:
            raise InvalidArgument("FILTER_BY_VALUE one or more arguments are missing")
        lo, hi = value_or_none(args[i + 1]), value_or_none(args[i + 2])
        if lo is None:
            raise InvalidArgument("Couldn't parse MIN")
        if hi is None:
            raise InvalidArgument("Couldn't parse MAX")
        opts["filter_by_min_value"], opts["filter_by_max_value"] = lo, hi
    i = find(args, "COUNT", start, stop)
    if i >= 0:
        if i + 1 >= stop:
            raise InvalidArgument("COUNT argument is missing")
        count = parse_int(args[i + 1])
        if count is None:
            raise InvalidArgument("Couldn't parse COUNT")
        if count <= 0:
            raise InvalidArgument("Invalid COUNT value")
        opts["count"] = count
    opts.update(_aggregation(args, start, stop))
    return opts


def _aggregation(args: list[str], start: int, stop: int) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    i = find(args, "AGGREGATION", start, stop)
    align = find(args, "ALIGN", start, stop)
    if i < 0:
        if align >= 0:
            raise InvalidArgument("ALIGN parameter can only be used with AGGREGATION")
        return opts
    if i + 2 >= stop:
        raise InvalidArgument("Couldn't parse AGGREGATION")
    opts["aggregation_type"] = parse_aggregator(args[i + 1])
    bucket = parse_int(args[i + 2])
    if bucket is None:
        raise InvalidArgument("Couldn't parse AGGREGATION")
    if bucket <= 0:
        raise InvalidArgument("bucketDuration must be greater than zero")
    opts["bucket_size_msec"] = bucket
    if align >= 0:
        if align + 1 >= stop:
            raise InvalidArgument("unknown ALIGN parameter")
        text = args[align + 1]
        if text.lower() in ("-", "start", "+", "end"):
            opts["align"] = text.lower()
        else:
            value = parse_int(text)
            if value is None:
                raise InvalidArgument("unknown ALIGN parameter")
            opts["align"] = value
    j = find(args, "BUCKETTIMESTAMP", start, stop)
    if j >= 0:
        if j + 1 >= stop or args[j + 1].lower() not in ("-", "start", "+", "end", "~", "mid"):
            raise InvalidArgument("unknown BUCKETTIMESTAMP parameter")
        opts["bucket_timestamp"] = args[j + 1].lower()
    if find(args, "EMPTY", start, stop) >= 0:
        opts["empty"] = True
    return opts


def label_list(args: list[str], start: int, stop: int) -> list[str]:
    """The label names after SELECTED_LABELS, up to the next keyword."""
    names = []
    for text in args[start:stop]:
        if text.upper() in MRANGE_KEYWORDS:
            break
        names.append(text)
    return names


def label_options(args: list[str], stop: int) -> dict[str, Any]:
    """WITHLABELS / SELECTED_LABELS of MGET and MRANGE."""
    opts: dict[str, Any] = {}
    if find(args, "WITHLABELS", 1, stop) >= 0:
        opts["with_labels"] = True
    i = find(args, "SELECTED_LABELS", 1, stop)
    if i >= 0:
        names = label_list(args, i + 1, stop)
        if not names:
            raise InvalidArgument("SELECTED_LABELS requires at least one label")
        opts["select_labels"] = names
    if opts.get("with_labels") and opts.get("select_labels"):
        raise InvalidArgument("cannot accept WITHLABELS and SELECT_LABELS together")
    return opts


def filters(args: list[str], name: str) -> tuple[int, list[str], tuple[str, str] | None]:
    """``(filter_index, filters, (groupby_label, reducer) | None)`` of MRANGE/MGET."""
    f = find(args, "FILTER", 1)
    if f < 0:
        raise wrong_arity(name)
    g = find(args, "GROUPBY", 1)
    if g < 0:
        return f, args[f + 1 :], None
    if g < f:
        raise InvalidArgument("GROUPBY should always come after filter")
    if len(args) < g + 4 or args[g + 2].upper() != "REDUCE":
        raise wrong_arity(name)
    reducer = args[g + 3].lower()
    if reducer not in REDUCERS:
        raise InvalidArgument("Invalid reducer type")
    return f, args[f + 1 : g], (args[g + 1], reducer)
