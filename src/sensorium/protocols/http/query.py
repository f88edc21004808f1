"""REST queries: sensors (seeds 000 and 003), TS.RANGE / MRANGE / MGET / QUERYINDEX (read path).

Endpoints are synchronous ``def`` routes: FastAPI runs them in its worker threads, so an engine
call never blocks the event loop. Replies are built as JSON directly (``replies.JSON``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query

from ...database import Database
from ...errors import SeriesNotFound
from .._errors import RequestError
from . import times
from .replies import JSON, duration_param, fields, now_ms, samples, time_param, value

MAX_LIST = 100_000  # largest page of /api/sensors and /api/series
SUMMARY = ("avg", "min", "max", "count")  # the columns of /hourly, /daily, /monthly
# seed 003's views: path → (bucket, default look-back period)
VIEWS = {"hourly": (times.HOUR_MS, "1w"), "daily": (times.DAY_MS, "1m"),
         "monthly": (times.MONTH_MS, "1y")}

Filters = Annotated[list[str] | None, Query(
    description="RedisTimeSeries filter, repeatable and ANDed: `zone=A`, `type!=x`, "
                "`zone=(A,B)`, `l=` (no label l), `l!=` (has l)")]
From = Annotated[str | None, Query(alias="from", description="epoch ms, RFC 3339, `now`, "
                                    "`-24h` or `-` (earliest)")]
To = Annotated[str | None, Query(description="as `from`; `+` is the latest")]
Format = Annotated[Literal["pairs", "columns"], Query(
    description="`pairs`: `samples` as `[[ts, value], …]`; `columns`: `timestamps` and `values` "
                "arrays (written straight from the engine's numpy columns, several times "
                "cheaper for long replies)")]


def aggregate(db: Database, key: str, aggregator: str, bucket_ms: int, from_ms: int,
              to_ms: int) -> dict[str, Any]:
    """``aggregator`` per bucket over whole buckets covering [from_ms, to_ms], each bucket
    from the coarsest tier that answers it exactly (``Database.aggregate``)."""
    return db.aggregate([key], from_ms, to_ms, aggregator, bucket_ms)[0]


def _rows(result: dict[str, Any]) -> list[tuple[int, float]]:
    return list(zip(result["timestamps"].tolist(), result["values"].tolist(), strict=True))


def _source(result: dict[str, Any]) -> str:
    """The series that answered the newest buckets (all sources are in ``sources``)."""
    return result["sources"][-1]["key"] if result["sources"] else result["key"]


def router(db: Database) -> APIRouter:
    api = APIRouter(tags=["query"])

    @api.get("/api/sensors", summary="List sensors (raw series, not tiers)")
    def list_sensors(filter: Filters = None, limit: int = 1000, offset: int = 0) -> JSON:  # noqa: A002
        if not 0 < limit <= MAX_LIST or offset < 0:
            raise RequestError(400, f"limit must be in 1..{MAX_LIST}, offset >= 0",
                               field="limit")
        keys = db.queryindex(filter) if filter else db.keys()
        out = []
        for key in keys:
            try:
                meta = db.describe(key)
                if meta["source_key"] is not None:
                    continue
                last = db.get(key)
            except SeriesNotFound:
                continue
            out.append({"sensor_id": key, "labels": meta["labels"],
                        "last": None if last is None else [last[0], value(last[1])]})
        page = out[offset:offset + limit]
        return JSON({"sensors": page, "count": len(page), "total": len(out)})

    @api.get("/api/sensors/{sensor_id:path}/current", summary="Latest reading")
    def current(sensor_id: str) -> JSON:
        last = db.get(sensor_id)
        return JSON({"sensor_id": sensor_id, "timestamp": None if last is None else last[0],
                     "value": None if last is None else value(last[1])})

    @api.get("/api/sensors/{sensor_id:path}/raw", summary="Raw samples of a look-back period")
    def raw(sensor_id: str, period: str = "1d", format: Format = "pairs") -> JSON:  # noqa: A002
        now = now_ms()
        period_ms = duration_param("period", period, period=True)
        assert period_ms is not None
        lo = max(now - period_ms, 0)
        return JSON({"sensor_id": sensor_id, "period": period, "from": lo, "to": now,
                     **_samples(db, format, "data", sensor_id, lo, now)})

    @api.get("/api/sensors/{sensor_id:path}/data",
             summary="Seed 000's dashboard query: a look-back range, raw or aggregated")
    def data(sensor_id: str, range: str = "24h", aggregation: str | None = None,  # noqa: A002
             aggregator: str = "avg", format: Format = "pairs") -> JSON:  # noqa: A002
        now = now_ms()
        range_ms = duration_param("range", range)
        assert range_ms is not None
        bucket_ms = duration_param("aggregation", aggregation)
        lo = max(now - range_ms, 0)
        if bucket_ms is None:
            return JSON({"sensor_id": sensor_id, "from": lo, "to": now, "source": sensor_id,
                         **_samples(db, format, "data", sensor_id, lo, now)})
        got = aggregate(db, sensor_id, aggregator, bucket_ms, lo, now)
        return JSON({"sensor_id": sensor_id, "from": got["from"], "to": got["to"],
                     "bucket_ms": bucket_ms, "aggregator": aggregator, "source": _source(got),
                     "sources": got["sources"], "data": samples(_rows(got))})

    def summary(sensor_id: str, view: str, period: str | None) -> JSON:
        bucket_ms, default = VIEWS[view]
        period = period or default
        now = now_ms()
        period_ms = duration_param("period", period, period=True)
        assert period_ms is not None
        by_ts: dict[int, dict[str, Any]] = {}
        got: dict[str, Any] = {}
        for agg in SUMMARY:
            got = aggregate(db, sensor_id, agg, bucket_ms, max(now - period_ms, 0), now)
            for ts, v in _rows(got):
                by_ts.setdefault(ts, {"timestamp": ts})[agg] = int(v) if agg == "count" \
                    else value(v)
        return JSON({"sensor_id": sensor_id, "period": period, "bucket_ms": bucket_ms,
                     "from": got["from"], "to": got["to"], "source": _source(got),
                     "sources": got["sources"], "data": [by_ts[t] for t in sorted(by_ts)]})

    for view in VIEWS:
        def endpoint(sensor_id: str, period: str | None = None, _view: str = view) -> JSON:
            return summary(sensor_id, _view, period)
        api.add_api_route(f"/api/sensors/{{sensor_id:path}}/{view}", endpoint, methods=["GET"],
                          summary=f"avg/min/max/count per {view[:-2] if view != 'daily' else 'day'}"
                                  f" bucket (default period {VIEWS[view][1]})",
                          name=f"sensor_{view}")

    @api.get("/api/series/{key:path}/range", summary="TS.RANGE / TS.REVRANGE")
    def series_range(
        key: str, from_: From = None, to: To = None, count: int | None = None,
        aggregation: Annotated[str | None, Query(description="avg, sum, min, max, range, "
                               "count, first, last, std.p, std.s, var.p, var.s, twa, pNN")] = None,
        bucket: Annotated[str | None, Query(description="bucket duration: `60000`, `1min`, "
                                                        "`1h`")] = None,
        align: str | None = None, bucket_timestamp: str | None = None, empty: bool = False,
        latest: bool = False, filter_by_ts: Annotated[list[str] | None, Query()] = None,
        min_value: float | None = None, max_value: float | None = None, reverse: bool = False,
        format: Format = "pairs",  # noqa: A002
    ) -> JSON:
        now = now_ms()
        args = _range_args(now, from_, to, count, aggregation, bucket, align, bucket_timestamp,
                           empty, latest, filter_by_ts, min_value, max_value)
        if format == "columns":
            if reverse:
                args["reverse"] = True
            return JSON({"key": key, **_samples(db, format, "samples", key, **args)})
        rows = (db.revrange if reverse else db.range)(key, **args)
        return JSON({"key": key, "samples": samples(rows)})

    @api.get("/api/query", summary="TS.MRANGE / TS.MREVRANGE over a label filter")
    def mrange(
        filter: Filters = None, from_: From = None, to: To = None,  # noqa: A002
        count: int | None = None, aggregation: str | None = None, bucket: str | None = None,
        align: str | None = None, bucket_timestamp: str | None = None, empty: bool = False,
        latest: bool = False, filter_by_ts: Annotated[list[str] | None, Query()] = None,
        min_value: float | None = None, max_value: float | None = None,
        with_labels: bool = False, select_labels: Annotated[list[str] | None, Query()] = None,
        groupby: str | None = None, reduce: str | None = None, reverse: bool = False,
        format: Format = "pairs",  # noqa: A002
    ) -> JSON:
        if not filter:
            raise RequestError(400, "at least one filter (label=value) is required",
                               field="filter")
        now = now_ms()
        args = _range_args(now, from_, to, count, aggregation, bucket, align, bucket_timestamp,
                           empty, latest, filter_by_ts, min_value, max_value)
        frm, to_ = args.pop("from_time"), args.pop("to_time")
        options = dict(with_labels=with_labels, select_labels=fields(select_labels),
                       groupby=groupby, reduce=reduce, **args)
        out = []
        if format == "columns":
            for entry in db.mrange_columns(frm, to_, filter, reverse=reverse, **options):
                for key, (labels, (ts, values)) in entry.items():
                    out.append({"key": key, "labels": labels, "timestamps": ts,
                                "values": values})
            return JSON({"series": out})
        for entry in (db.mrevrange if reverse else db.mrange)(frm, to_, filter, **options):
            for key, (labels, rows) in entry.items():
                out.append({"key": key, "labels": labels, "samples": samples(rows)})
        return JSON({"series": out})

    @api.get("/api/aggregate", summary="Many sensors aggregated per bucket, each bucket read "
             "from the coarsest tier that answers it exactly (stitched over expired data)")
    def aggregate_many(
        filter: Filters = None, key: Annotated[list[str] | None, Query(  # noqa: A002
            description="raw series keys (repeatable), instead of or with no filter")] = None,
        from_: From = None, to: To = None, aggregation: str = "avg",
        bucket: Annotated[str, Query(description="`1h`, `1min`, `60000`")] = "1h",
        align: int = 0, stitch: Annotated[bool, Query(
            description="answer expired buckets from coarser tiers at their own size")] = True,
    ) -> JSON:
        if not filter and not key:
            raise RequestError(400, "give a filter (label=value) or keys", field="filter")
        now = now_ms()
        bucket_ms = duration_param("bucket", bucket)
        assert bucket_ms is not None
        got = db.aggregate(key, time_param("from", from_, now, now - times.DAY_MS),
                           time_param("to", to, now, now), aggregation, bucket_ms,
                           filters=filter if not key else None, align=align, stitch=stitch)
        # Columns, not [ts, value] pairs: numpy arrays go to JSON without a Python object
        # per sample (a third of the reply time for 100 sensors x 720 hours).
        return JSON({"aggregation": aggregation, "bucket_ms": bucket_ms,
                     "series": [{"key": r["key"], "from": r["from"], "to": r["to"],
                                 "sources": r["sources"], "timestamps": r["timestamps"],
                                 "values": r["values"]} for r in got]})

    @api.get("/api/latest", summary="TS.MGET: the newest sample of every matching series")
    def mget(filter: Filters = None, with_labels: bool = False,  # noqa: A002
             select_labels: Annotated[list[str] | None, Query()] = None,
             latest: bool = False) -> JSON:
        if not filter:
            raise RequestError(400, "at least one filter (label=value) is required",
                               field="filter")
        reply = db.mget(filter, with_labels=with_labels, select_labels=fields(select_labels),
                        latest=latest)
        out = []
        for entry in reply:
            for key, (labels, ts, v) in entry.items():
                out.append({"key": key, "labels": labels, "timestamp": ts, "value": value(v)})
        return JSON({"series": out})

    @api.get("/api/series", summary="TS.QUERYINDEX: keys matching a filter (all without one)")
    def list_series(filter: Filters = None, labels: bool = False) -> JSON:  # noqa: A002
        keys = db.queryindex(filter) if filter else db.keys()
        if not labels:
            return JSON({"keys": keys})
        out = []
        for key in keys:
            try:
                out.append({"key": key, "labels": db.describe(key)["labels"]})
            except SeriesNotFound:
                continue
        return JSON({"series": out})

    @api.get("/api/series/{key:path}", summary="TS.INFO")
    def info(key: str) -> JSON:
        return JSON({"key": key, **db.info(key)})

    return api


def _samples(db: Database, format: str, name: str, key: str, from_time: int,  # noqa: A002
             to_time: int, reverse: bool = False, **options: Any) -> dict[str, Any]:
    """A raw-sample reply: ``{name: [[ts, value], …]}`` or, for ``format=columns``,
    ``{"timestamps": […], "values": […]}`` encoded from numpy without a Python object per
    sample (``Database.range_columns``)."""
    if format == "columns":
        ts, values = db.range_columns(key, from_time, to_time, reverse=reverse, **options)
        # orjson writes C-contiguous arrays only (a reversed view is not)
        return {"timestamps": np.ascontiguousarray(ts), "values": np.ascontiguousarray(values)}
    return {name: samples(db.range(key, from_time, to_time, **options))}


def _range_args(now: int, from_: str | None, to: str | None, count: int | None,
                aggregation: str | None, bucket: str | None, align: str | None,
                bucket_timestamp: str | None, empty: bool, latest: bool,
                filter_by_ts: list[str] | None, min_value: float | None,
                max_value: float | None) -> dict[str, Any]:
    """Query parameters → keyword arguments of ``Database.range`` / ``mrange``."""
    args: dict[str, Any] = {
        "from_time": time_param("from", from_, now, times.EARLIEST_MS),
        "to_time": time_param("to", to, now, times.LATEST_MS),
        "count": count, "latest": latest, "empty": empty,
        "filter_by_min_value": min_value, "filter_by_max_value": max_value,
    }
    if aggregation is not None:
        bucket_ms = duration_param("bucket", bucket)
        if bucket_ms is None:
            raise RequestError(400, "aggregation needs a bucket", field="bucket")
        args.update(aggregation_type=aggregation, bucket_size_msec=bucket_ms,
                    bucket_timestamp=bucket_timestamp)
        if align is not None:
            args["align"] = align if align in ("-", "+", "start", "end") else time_param(
                "align", align, now, 0)
    elif bucket is not None or align is not None:
        raise RequestError(400, "bucket and align need an aggregation", field="aggregation")
    ts_list = fields(filter_by_ts)
    if ts_list is not None:
        args["filter_by_ts"] = [time_param("filter_by_ts", t, now, 0) for t in ts_list]
    return args
