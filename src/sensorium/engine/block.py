"""Immutable Parquet blocks: sorted (sid, ts) rows, compressed (write path flush, read path scan).

A block is one Parquet file of rows sorted by (sid, ts) with named int64/float64 columns. Each
column is delta coded *within a series* and zigzagged, floats first become integer mantissas
at a per-series decimal scale, and the result is stored BYTE_STREAM_SPLIT + zstd: typical
sensor data costs under a byte per sample. The sid column is not stored: the series index in
the footer (sids, row counts, first/last ts) says which rows belong to which series, and lets
a read decode only the row groups it needs. Byte layout: docs/format/block.md.

Blocks are immutable and ``BlockMeta`` is frozen, so every function here is thread-safe.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import CorruptionError, InvalidArgument
from .fsync import fsync_dir

Columns = dict[str, np.ndarray]

FORMAT_VERSION = 1
# Rows per row group, the unit of decoding and caching: a cold one-series read decodes a whole
# group. 16 Ki rows: a cold 1-hour read 1.0 -> 0.69 ms against 64 Ki (session 5, same run),
# for +0.01 byte a sample and ~15 % more time on reads spanning many groups (footer entries).
ROW_GROUP_ROWS = 16_384
# Rows of one series per index entry (a "chunk"): the unit a time-range read decodes. A
# restart costs a few bytes (one full value per column), i.e. under 0.01 byte a row.
CHUNK_ROWS = 1024
# Rows encoded at once while writing: bounds the encoder's temporaries (~60 bytes a row).
ENCODE_BATCH_ROWS = 1 << 22
# Rows decoded at once by a read: temporaries stay cache-sized, scans stay bounded.
READ_BATCH_ROWS = 1 << 18
# A loaded row group counts as 1/8 of its rows towards READ_BATCH_ROWS when only some of
# them are wanted: a batch then holds at most 32 groups' codes (~50 MiB uncached).
_LOADED_ROW_SHARE = 8
# Level 3 is the knee: level 9 saves ~2% more and writes ~3x slower.
ZSTD_LEVEL = 3
# Largest decimal scale tried; 10**12 still keeps realistic mantissas below 2**53.
MAX_SCALE = 12
# Rows of each run tried at every scale before the whole run is checked at the winner.
SCALE_SAMPLE_ROWS = 8
# Scale marking a run stored as raw IEEE-754 bits (NaN, inf, -0.0, full-precision floats).
SCALE_RAW = -1
SCALE_SUFFIX = "__scale"
_META_KEY = "sensorium.block"
_INDEX_KEY = "sensorium.index"
_POW10 = 10.0 ** np.arange(MAX_SCALE + 1)


@dataclass(frozen=True, slots=True, eq=False)
class BlockMeta:
    """What a reader needs to know of one block, loaded without scanning its rows.

    ``index_*`` arrays are parallel and sorted by (sid, ts), one entry per chunk of at most
    ``CHUNK_ROWS`` rows of a series: entry ``i`` of series ``index_sids[i]`` owns rows
    ``[index_start[i], index_end[i])`` with timestamps in ``[index_min_ts[i], index_max_ts[i]]``
    (ms, inclusive). Row group ``k`` holds rows ``[rg_start[k], rg_start[k + 1])``. Arrays are
    read-only.
    """

    path: str
    uid: str  # unique per written file: cache key that survives a path being reused
    rows: int
    min_ts: int
    max_ts: int
    size_bytes: int
    columns: dict[str, np.dtype]
    index_sids: np.ndarray
    index_start: np.ndarray
    index_end: np.ndarray
    index_min_ts: np.ndarray
    index_max_ts: np.ndarray
    rg_start: np.ndarray
    rg_first_ts: np.ndarray
    rg_last_ts: np.ndarray
    footer: pq.FileMetaData = field(repr=False)


class RowGroupCache:
    """LRU of decoded row groups keyed by (block uid, row group), bounded in bytes.

    Thread-safe. Cached arrays are shared with every reader and must not be modified.
    """

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, int], Columns] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, int]) -> Columns | None:
        with self._lock:
            got = self._entries.get(key)
            if got is not None:
                self._entries.move_to_end(key)
            return got

    def put(self, key: tuple[str, int], cols: Columns) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= sum(a.nbytes for a in old.values())
            self._entries[key] = cols
            self.nbytes += sum(a.nbytes for a in cols.values())
            while self.nbytes > self.max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self.nbytes -= sum(a.nbytes for a in dropped.values())


# -- write path -------------------------------------------------------------------------------
def write_block(
    path: str,
    sids: np.ndarray,
    ts: np.ndarray,
    columns: Columns,
    *,
    row_group_rows: int = ROW_GROUP_ROWS,
    compression_level: int = ZSTD_LEVEL,
) -> BlockMeta:
    """Writes rows sorted by (sid, ts) as a block at ``path``, atomically.

    The file is written to ``path + ".tmp"``, fsynced, renamed over ``path`` and the directory
    fsynced, so a crash leaves either no block or a whole one (plus maybe a stale ``.tmp``,
    which is never read as a block and is overwritten by the next write).

    Args:
        sids: int32 series ids; ts: int64 ms; strictly increasing by (sid, ts), non-empty.
        columns: equal-length int64 or float64 arrays (other int/float dtypes are widened);
            floats round-trip bit-exactly, NaN payloads and -0.0 included.
        row_group_rows: target rows per row group; groups are cut at series starts when one
            lies in the last ``row_group_rows`` rows before the target.

    Raises:
        InvalidArgument: a column name is reserved or its dtype is not integer/float.
        AssertionError: rows are empty, unsorted or lengths differ.
    """
    sids = np.ascontiguousarray(sids, np.int32)
    ts = np.ascontiguousarray(ts, np.int64)
    n = len(ts)
    assert n > 0 and len(sids) == n, "BUG: empty block or sids/ts lengths differ"
    assert (np.diff(sids) >= 0).all(), "BUG: rows not sorted by sid"
    series_starts = np.flatnonzero(np.r_[True, sids[1:] != sids[:-1]])
    same = sids[1:] == sids[:-1]
    assert (ts[1:][same] > ts[:-1][same]).all(), "BUG: ts not strictly increasing in a series"
    cols = {name: _as_column(name, a, n) for name, a in columns.items()}
    starts = _chunk_starts(series_starts, n)

    ends = np.r_[starts[1:], n]
    rg_start = _plan_row_groups(starts, n, row_group_rows)
    meta_json = {
        "version": FORMAT_VERSION, "uid": uuid.uuid4().hex, "rows": n,
        "min_ts": int(ts.min()), "max_ts": int(ts.max()),
        "columns": {name: a.dtype.name for name, a in cols.items()},
    }
    index = {
        "sids": sids[starts], "counts": ends - starts,
        "min_ts": ts[starts], "max_ts": ts[ends - 1],
        "rg_rows": np.diff(rg_start), "rg_first_ts": ts[rg_start[:-1]],
        "rg_last_ts": ts[rg_start[1:] - 1],
    }
    blob = _pack_index(index, meta_json["min_ts"])
    meta_json["index_crc32"] = zlib.crc32(blob)
    # Required (non-nullable) columns: no definition levels to decode, which cut a cold
    # row-group read by about 40%.
    fields = [pa.field("ts", pa.int64(), nullable=False)]
    for name in cols:
        fields.append(pa.field(name, pa.int64(), nullable=False))
        if cols[name].dtype.kind == "f":
            fields.append(pa.field(name + SCALE_SUFFIX, pa.int8(), nullable=False))
    schema = pa.schema(fields)
    tmp = path + ".tmp"
    try:
        with pq.ParquetWriter(
            tmp, schema, compression="zstd", compression_level=compression_level,
            use_dictionary=[f.name for f in fields if f.name.endswith(SCALE_SUFFIX)],
            column_encoding={f.name: "BYTE_STREAM_SPLIT" for f in fields if f.type == pa.int64()},
            write_statistics=False,  # delta codes have useless min/max; the index prunes instead
            store_schema=False,  # no ARROW:schema: the footer stays small
            write_page_checksum=True,
        ) as writer:
            for lo, hi in _batches(rg_start):
                _write_batch(writer, schema, ts, cols, starts, rg_start, lo, hi)
            writer.add_key_value_metadata({
                _META_KEY: json.dumps(meta_json), _INDEX_KEY: base64.b64encode(blob).decode(),
            })
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))
    return _make_meta(path, meta_json, list(index.values()), pq.read_metadata(path))


def _chunk_starts(series_starts: np.ndarray, n: int) -> np.ndarray:
    """Series starts plus a start every ``CHUNK_ROWS`` rows inside a long series: each is an
    index entry and restarts the delta chains, so a read of a short time range of a long
    series decodes a chunk or two, not the whole series."""
    lens = np.diff(np.r_[series_starts, n])
    per = (lens + CHUNK_ROWS - 1) // CHUNK_ROWS
    if (per == 1).all():
        return series_starts
    first = np.repeat(series_starts, per)
    k = np.arange(len(first)) - np.repeat(np.cumsum(per) - per, per)
    return first + k * CHUNK_ROWS


def _as_column(name: str, a: np.ndarray, n: int) -> np.ndarray:
    if name == "ts" or name.endswith(SCALE_SUFFIX):
        raise InvalidArgument(f"column name {name!r} is reserved")
    a = np.asarray(a)
    assert len(a) == n, f"BUG: column {name!r} has {len(a)} rows, expected {n}"
    if a.dtype.kind == "f":
        return np.ascontiguousarray(a, np.float64)
    if a.dtype.kind in "iub":
        return np.ascontiguousarray(a, np.int64)
    raise InvalidArgument(f"column {name!r} has unsupported dtype {a.dtype}")


def _plan_row_groups(starts: np.ndarray, n: int, rows: int) -> np.ndarray:
    """Row group offsets (with n at the end): each cut at a multiple of ``rows`` moves back
    to the last series start after the previous multiple, so most series sit in one group."""
    targets = np.arange(rows, n, rows, dtype=np.int64)
    if len(targets) == 0:
        return np.array([0, n], np.int64)
    snapped = starts[np.searchsorted(starts, targets, side="right") - 1]
    cuts = np.where(snapped > targets - rows, snapped, targets)
    return np.unique(np.r_[0, cuts, n]).astype(np.int64)


def _batches(rg_start: np.ndarray) -> list[tuple[int, int]]:
    """Runs of whole row groups (indices lo..hi) of about ENCODE_BATCH_ROWS rows."""
    out, lo = [], 0
    for k in range(1, len(rg_start)):
        if rg_start[k] - rg_start[lo] >= ENCODE_BATCH_ROWS or k == len(rg_start) - 1:
            out.append((lo, k))
            lo = k
    return out


def _write_batch(
    writer: pq.ParquetWriter, schema: pa.Schema, ts: np.ndarray,
    cols: Columns, starts: np.ndarray, rg_start: np.ndarray, lo: int, hi: int,
) -> None:
    r0, r1 = int(rg_start[lo]), int(rg_start[hi])
    # Restart rows begin a series or a row group: the delta chain restarts there, so every
    # row group decodes on its own.
    restart = np.zeros(r1 - r0, bool)
    restart[starts[(starts >= r0) & (starts < r1)] - r0] = True
    restart[rg_start[lo:hi] - r0] = True
    out: dict[str, np.ndarray] = {"ts": _encode_ts(ts[r0:r1], restart)}
    for name, a in cols.items():
        if a.dtype.kind == "f":
            mantissa, scale = _decimal_scale(a[r0:r1], np.flatnonzero(restart))
            out[name] = _encode_delta(mantissa, restart)
            out[name + SCALE_SUFFIX] = scale
        else:
            out[name] = _encode_delta(a[r0:r1], restart)
    for k in range(lo, hi):
        a, b = int(rg_start[k]) - r0, int(rg_start[k + 1]) - r0
        table = pa.table({f: pa.array(out[f][a:b]) for f in schema.names}, schema=schema)
        writer.write_table(table, row_group_size=b - a)


def _zigzag(d: np.ndarray) -> np.ndarray:
    return (d << 1) ^ (d >> 63)  # small magnitudes of either sign → small codes


def _unzigzag(z: np.ndarray) -> np.ndarray:
    # In place on two temporaries: the one-expression form (uint64 ``&``, negate, ``^``) ran
    # 8x slower, and was a tenth of a warm multi-series read.
    out = (z.view(np.uint64) >> np.uint64(1)).view(np.int64)
    sign = z & 1
    np.negative(sign, out=sign)
    out ^= sign
    return out


def _encode_delta(x: np.ndarray, restart: np.ndarray) -> np.ndarray:
    """zigzag(x[i] - x[i-1]), or zigzag(x[i]) on restart rows; int64 wraps (raw float bits)."""
    d = np.empty_like(x)
    d[1:] = x[1:] - x[:-1]
    d[restart] = x[restart]
    return _zigzag(d)


def _encode_ts(ts: np.ndarray, restart: np.ndarray) -> np.ndarray:
    """Like _encode_delta, but restart rows repeat the previous code: their timestamp is in
    the index (series min_ts, row group first_ts), and a repeat costs zstd nothing."""
    d = np.zeros_like(ts)
    d[1:] = ts[1:] - ts[:-1]
    code = _zigzag(d)
    inner = np.flatnonzero(~restart)
    if len(inner):
        code[0] = code[inner[0]]
    prev = np.maximum.accumulate(np.where(restart, 0, np.arange(len(ts))))
    return code[prev]


def _decimal_scale(v: np.ndarray, run_starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per run, the smallest d with ``rint(v * 10**d) / 10**d`` bit-identical to v for every
    row; returns (mantissas int64, scale int8 per row). Runs with no such d store raw bits."""
    lens = np.diff(np.r_[run_starts, len(v)])
    # A run's d is at least its sample's d, and almost always equal: one full pass checks it.
    head = np.minimum(lens, SCALE_SAMPLE_ROWS)
    run_scale = _smallest_scale(v[_ranges(run_starts, run_starts + head)], head)
    scale = np.repeat(run_scale, lens)
    mantissa, ok = _mantissa(v, scale)
    bad = ~np.logical_and.reduceat(ok, run_starts) & (run_scale != SCALE_RAW)
    if bad.any():
        rows = _ranges(run_starts[bad], run_starts[bad] + lens[bad])
        run_scale[bad] = _smallest_scale(v[rows], lens[bad])
        scale = np.repeat(run_scale, lens)
        mantissa[rows] = _mantissa(v[rows], scale[rows])[0]
    raw = scale == SCALE_RAW
    mantissa[raw] = v[raw].view(np.int64)
    return mantissa, scale


def _smallest_scale(v: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Per run of ``lens`` rows, the smallest scale that round-trips it, or SCALE_RAW."""
    run_scale = np.full(len(lens), SCALE_RAW, np.int8)
    runs = np.arange(len(lens))  # runs still undecided; v keeps only their rows
    for d in range(MAX_SCALE + 1):
        ok = _mantissa(v, d)[1]
        run_ok = np.logical_and.reduceat(ok, np.r_[0, np.cumsum(lens[runs])[:-1]])
        run_scale[runs[run_ok]] = d
        v = v[~np.repeat(run_ok, lens[runs])]
        runs = runs[~run_ok]
        if len(runs) == 0:
            break
    return run_scale


def _mantissa(v: np.ndarray, scale: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """(rint(v * 10**scale) as int64, whether dividing it back gives v's exact bits)."""
    p = _POW10[scale]
    with np.errstate(all="ignore"):  # overflow to inf and NaN compares are expected here
        r = np.rint(v * p)
        fits = np.abs(r) < 2.0**53  # false for NaN/inf; keeps deltas far from overflow
        m = np.where(fits, r, 0.0).astype(np.int64)
        return m, fits & ((m / p).view(np.int64) == v.view(np.int64))


def _pack_index(index: Columns, base_ts: int) -> bytes:
    """Index arrays as small deltas, byte-transposed (like BYTE_STREAM_SPLIT) and zstd'd."""
    sids = index["sids"].astype(np.int64)
    parts = [
        np.diff(sids, prepend=0), index["counts"], index["min_ts"] - base_ts,
        index["max_ts"] - index["min_ts"], index["rg_rows"],
        index["rg_first_ts"] - base_ts, index["rg_last_ts"] - base_ts,
    ]
    head = np.array([len(sids), len(index["rg_rows"])], np.int64)
    raw = head.tobytes() + b"".join(
        np.ascontiguousarray(p, np.int64).view(np.uint8).reshape(-1, 8).T.tobytes()
        for p in parts
    )
    return len(raw).to_bytes(8, "little") + pa.compress(raw, codec="zstd", asbytes=True)


def _unpack_index(blob: bytes, base_ts: int) -> list[np.ndarray]:
    size = int.from_bytes(blob[:8], "little")
    raw = pa.decompress(blob[8:], decompressed_size=size, codec="zstd", asbytes=True)
    n_series, n_rg = np.frombuffer(raw, np.int64, 2)
    out, pos = [], 16
    for length in (n_series,) * 4 + (n_rg,) * 3:
        nbytes = int(length) * 8
        planes = np.frombuffer(raw, np.uint8, nbytes, pos).reshape(8, -1)
        out.append(np.ascontiguousarray(planes.T).view(np.int64).ravel())
        pos += nbytes
    dsid, counts, min_ts, span, rg_rows, rg_first, rg_last = out
    return [np.cumsum(dsid).astype(np.int32), counts, min_ts + base_ts,
            min_ts + base_ts + span, rg_rows, rg_first + base_ts, rg_last + base_ts]


# -- read path --------------------------------------------------------------------------------
def read_meta(path: str) -> BlockMeta:
    """Loads a block's meta and series index from its footer (no row is decoded).

    Raises:
        InvalidArgument: ``path`` names an unfinished ``.tmp`` file.
        CorruptionError: the file is not a complete block or its index fails its checksum.
        FileNotFoundError: no such file.
    """
    if path.endswith(".tmp"):
        raise InvalidArgument(f"{path} is an unfinished block")
    size = os.path.getsize(path)
    try:
        footer = pq.read_metadata(path)
        kv = footer.metadata or {}
        info = json.loads(kv[_META_KEY.encode()])
        blob = base64.b64decode(kv[_INDEX_KEY.encode()])
    except (pa.ArrowException, KeyError, ValueError) as exc:
        raise CorruptionError(path, size, f"not a block footer: {exc}") from exc
    if info["version"] != FORMAT_VERSION or zlib.crc32(blob) != info["index_crc32"]:
        raise CorruptionError(path, size, "series index checksum or version mismatch")
    return _make_meta(path, info, _unpack_index(blob, info["min_ts"]), footer)


def _make_meta(
    path: str, info: dict[str, Any], index: list[np.ndarray], footer: pq.FileMetaData,
) -> BlockMeta:
    sids, counts, min_ts, max_ts, rg_rows, rg_first, rg_last = index
    end = np.cumsum(counts)
    arrays = [sids, end - counts, end, min_ts, max_ts, np.r_[0, np.cumsum(rg_rows)],
              rg_first, rg_last]
    for a in arrays:
        a.flags.writeable = False
    return BlockMeta(
        path, info["uid"], info["rows"], info["min_ts"], info["max_ts"],
        os.path.getsize(path), {name: np.dtype(t) for name, t in info["columns"].items()},
        *arrays, footer=footer,
    )


def series_max_ts(meta: BlockMeta) -> tuple[np.ndarray, np.ndarray]:
    """(sids, newest ts of each) in the block, for retention decisions."""
    return meta.index_sids, meta.index_max_ts


def read(
    meta: BlockMeta,
    sids: np.ndarray | None,
    min_ts: int,
    max_ts: int,
    columns: tuple[str, ...] | list[str] | None = None,
    *,
    cache: RowGroupCache | None = None,
) -> tuple[np.ndarray, np.ndarray, Columns]:
    """Rows of ``sids`` (any order, None = all) with ``min_ts <= ts <= max_ts``.

    Only row groups that can hold wanted rows are read (from ``cache`` when given), and only
    the wanted series' rows in them are decoded. Returns new arrays (sids int32, ts int64,
    columns) sorted by (sid, ts); ``columns`` default to all.

    Raises:
        InvalidArgument: an unknown column is asked for.
        CorruptionError: a page fails its checksum or cannot be decoded.
    """
    names = tuple(meta.columns) if columns is None else tuple(columns)
    for name in names:
        if name not in meta.columns:
            raise InvalidArgument(f"block {meta.path} has no column {name!r}")
    if sids is not None and len(sids) == 1:
        return _read_series(meta, int(np.asarray(sids).ravel()[0]), min_ts, max_ts, names, cache)
    if sids is None:
        pos = np.arange(len(meta.index_sids))
    else:  # every index entry (chunk) of the wanted series
        want = np.unique(np.asarray(sids, np.int64).ravel())
        pos = _ranges(np.searchsorted(meta.index_sids, want, "left"),
                      np.searchsorted(meta.index_sids, want, "right"))
    pos = pos[(meta.index_min_ts[pos] <= max_ts) & (meta.index_max_ts[pos] >= min_ts)]
    # Pieces: a series' rows in one row group. Each starts on a restart row, so it decodes on
    # its own; its first ts is the series' min_ts or the row group's first_ts.
    k0 = np.searchsorted(meta.rg_start, meta.index_start[pos], "right") - 1
    k1 = np.searchsorted(meta.rg_start, meta.index_end[pos] - 1, "right") - 1
    p_pos = np.repeat(pos, k1 - k0 + 1)
    p_rg = _ranges(k0, k1 + 1)
    a = np.maximum(meta.index_start[p_pos], meta.rg_start[p_rg])
    b = np.minimum(meta.index_end[p_pos], meta.rg_start[p_rg + 1])
    first_ts = np.where(a == meta.index_start[p_pos], meta.index_min_ts[p_pos],
                        meta.rg_first_ts[p_rg])
    last_ts = np.where(b == meta.index_end[p_pos], meta.index_max_ts[p_pos],
                       meta.rg_last_ts[p_rg])
    keep = (first_ts <= max_ts) & (last_ts >= min_ts)
    p_pos, p_rg, a, b, first_ts = p_pos[keep], p_rg[keep], a[keep], b[keep], first_ts[keep]
    if len(p_rg) == 0:
        return (np.empty(0, np.int32), np.empty(0, np.int64),
                {n: np.empty(0, meta.columns[n]) for n in names})
    # Pieces are in row order. Decode them a few row groups at a time: the temporaries stay
    # in cache and a full scan never holds more than one batch of codes.
    # A batch counts its pieces' rows plus a share of each group it loads: only the pieces
    # are copied out of the groups, so a sparse read (an hour of 100 series, one group
    # each) takes a few batches, not one per four groups.
    rg_rows = meta.rg_start[p_rg + 1] - meta.rg_start[p_rg]
    new_rg = np.flatnonzero(np.diff(p_rg)) + 1
    batch = b - a
    batch[new_rg] += rg_rows[new_rg] // _LOADED_ROW_SHARE
    batch = (np.cumsum(batch) + rg_rows[0] // _LOADED_ROW_SHARE) // READ_BATCH_ROWS
    cuts = np.concatenate(([0], np.flatnonzero(np.diff(batch)) + 1, [len(p_rg)]))
    parts = [
        _read_pieces(meta, names, cache, min_ts, max_ts,
                     p_pos[i:j], p_rg[i:j], a[i:j], b[i:j], first_ts[i:j])
        for i, j in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True)
    ]
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            {n: np.concatenate([p[2][n] for p in parts]) for n in names})


def _read_series(
    meta: BlockMeta, sid: int, min_ts: int, max_ts: int, names: tuple[str, ...],
    cache: RowGroupCache | None,
) -> tuple[np.ndarray, np.ndarray, Columns]:
    """``read`` of one series (TS.RANGE on a key): its chunks are consecutive rows of the
    block, so the rows to decode are one range (cut at row-group boundaries), sliced from the
    codes without gathers, and the window is cut from the decoded, sorted timestamps with two
    binary searches instead of a mask."""
    lo, hi = meta.index_sids.searchsorted(np.array([sid, sid + 1], np.int32)).tolist()
    # A series' chunks are in time order: those meeting the window are a run of them.
    c0 = lo + int(meta.index_max_ts[lo:hi].searchsorted(min_ts, "left"))
    c1 = lo + int(meta.index_min_ts[lo:hi].searchsorted(max_ts, "right"))
    if c0 >= c1:
        return (np.empty(0, np.int32), np.empty(0, np.int64),
                {n: np.empty(0, meta.columns[n]) for n in names})
    row_a, row_b = int(meta.index_start[c0]), int(meta.index_end[c1 - 1])
    rg_start = meta.rg_start
    k0 = int(rg_start.searchsorted(row_a, "right")) - 1
    k1 = int(rg_start.searchsorted(row_b - 1, "right")) - 1
    # A chunk split by a row-group boundary may have no wanted row on one side: the row
    # group there is not loaded (the rows range crosses the boundary, so its last or first
    # row belongs to this series).
    while k0 < k1 and meta.rg_last_ts[k0] < min_ts:
        k0 += 1
        row_a = int(rg_start[k0])
    while k1 > k0 and meta.rg_first_ts[k1] > max_ts:
        row_b = int(rg_start[k1])
        k1 -= 1
    codes = _load_row_groups(meta, list(range(k0, k1 + 1)), names, cache)
    cuts = [(max(row_a, int(rg_start[k])) - int(rg_start[k]),
             min(row_b, int(rg_start[k + 1])) - int(rg_start[k])) for k in range(k0, k1 + 1)]

    def column(name: str) -> np.ndarray:
        if len(codes) == 1:
            a, b = cuts[0]
            return codes[0][name][a:b]
        return np.concatenate([c[name][a:b] for c, (a, b) in zip(codes, cuts, strict=True)])

    # Restart rows: chunk starts and row-group starts (same timestamp where both).
    chunk_rows = meta.index_start[c0:c1]
    rg_rows = rg_start[k0:k1 + 1]
    at = np.concatenate([chunk_rows, rg_rows])
    first = np.concatenate([meta.index_min_ts[c0:c1], meta.rg_first_ts[k0:k1 + 1]])
    at, i = np.unique(at, return_index=True)
    inside = at >= row_a
    restarts, first = at[inside] - row_a, first[i[inside]]
    lens = np.diff(np.append(restarts, row_b - row_a))
    ts = _decode_ts(column("ts"), restarts, lens, first)
    a, b = ts.searchsorted(np.array([min_ts, max_ts + 1], np.int64)).tolist()
    out = {}
    for name in names:
        x = _decode_delta(column(name), restarts, lens)
        if meta.columns[name].kind == "f":
            x = _decode_float(x, column(name + SCALE_SUFFIX))
        out[name] = x[a:b]
    return np.full(b - a, sid, np.int32), ts[a:b], out


def _read_pieces(
    meta: BlockMeta, names: tuple[str, ...], cache: RowGroupCache | None,
    min_ts: int, max_ts: int, p_pos: np.ndarray, p_rg: np.ndarray,
    a: np.ndarray, b: np.ndarray, first_ts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, Columns]:
    rgs = np.unique(p_rg)
    codes = _load_row_groups(meta, rgs.tolist(), names, cache)
    lens = b - a
    ends = np.cumsum(lens)
    restarts = ends - lens
    rows = meta.rg_start[rgs + 1] - meta.rg_start[rgs]
    runs = None  # None: every loaded row is wanted, no gather needed
    if ends[-1] != rows.sum():
        # Runs of consecutive rows of one loaded group: the pieces, merged where they touch.
        j = np.searchsorted(rgs, p_rg)
        lo, hi = a - meta.rg_start[p_rg], b - meta.rg_start[p_rg]
        first = np.flatnonzero(np.concatenate(
            ([True], (j[1:] != j[:-1]) | (lo[1:] != hi[:-1]))))
        last = np.append(first[1:] - 1, len(hi) - 1)
        runs = list(zip(j[first].tolist(), lo[first].tolist(), hi[last].tolist(), strict=True))
    ts = _decode_ts(_gather(codes, "ts", runs), restarts, lens, first_ts)
    mask = (ts >= min_ts) & (ts <= max_ts)
    out = {}
    for name in names:
        x = _decode_delta(_gather(codes, name, runs), restarts, lens)
        if meta.columns[name].kind == "f":
            x = _decode_float(x, _gather(codes, name + SCALE_SUFFIX, runs))
        out[name] = x[mask]
    return np.repeat(meta.index_sids[p_pos], lens)[mask], ts[mask], out


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, e) for each pair, without a Python loop."""
    lens = ends - starts
    ends_out = np.cumsum(lens)
    total = int(ends_out[-1]) if len(lens) else 0
    return np.arange(total, dtype=np.int64) + np.repeat(starts - (ends_out - lens), lens)


def _gather(codes: list[Columns], name: str,
            runs: list[tuple[int, int, int]] | None) -> np.ndarray:
    """Column ``name`` of the loaded groups, all of it (``runs`` None) or the rows of
    ``runs`` ``(group, start, stop)``: slices copied once, never whole groups (a read of
    one hour of 100 series touches about 100 groups for a few thousand rows each)."""
    if runs is None:
        return codes[0][name] if len(codes) == 1 else np.concatenate([c[name] for c in codes])
    if len(runs) == 1:
        k, start, stop = runs[0]
        return codes[k][name][start:stop]
    return np.concatenate([codes[k][name][start:stop] for k, start, stop in runs])


def _decode_ts(
    code: np.ndarray, restarts: np.ndarray, lens: np.ndarray, first_ts: np.ndarray,
) -> np.ndarray:
    d = _unzigzag(code)
    d[restarts] = 0
    c = np.cumsum(d)
    c += np.repeat(first_ts - c[restarts], lens)
    return c


def _decode_delta(code: np.ndarray, restarts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    d = _unzigzag(code)
    c = np.cumsum(d)  # wraps like the encoder's subtraction did: exact on raw bits too
    c -= np.repeat(c[restarts] - d[restarts], lens)
    return c


def _decode_float(mantissa: np.ndarray, scale: np.ndarray) -> np.ndarray:
    lo, hi = (int(scale.min()), int(scale.max())) if len(scale) else (0, 0)
    if lo >= 0:  # no raw-bits run; usually one scale throughout (sensor decimals)
        return mantissa / (_POW10[lo] if lo == hi else _POW10[scale])
    raw = scale < 0
    v = mantissa / _POW10[np.where(raw, 0, scale)]
    v[raw] = mantissa[raw].view(np.float64)
    return v


def _load_row_groups(
    meta: BlockMeta, rgs: list[int], names: tuple[str, ...], cache: RowGroupCache | None,
) -> list[Columns]:
    """The stored codes of row groups (Parquet-decoded, not yet un-delta'd)."""
    wanted = ["ts"]
    for n in names:
        wanted += [n, n + SCALE_SUFFIX] if meta.columns[n].kind == "f" else [n]
    got: list[Columns] = []
    f: pa.NativeFile | None = None
    pf: pq.ParquetFile | None = None
    try:
        for k in rgs:
            entry = cache.get((meta.uid, k)) if cache is not None else None
            entry = dict(entry) if entry is not None else {}
            missing = [n for n in wanted if n not in entry]
            if missing:
                if pf is None:  # one open file and reader for all the row groups of a call
                    f = pa.OSFile(meta.path)
                    # The footer is already parsed: hand it over instead of re-reading it.
                    pf = pq.ParquetFile(f, metadata=meta.footer,
                                        page_checksum_verification=True)
                table = pf.read_row_group(k, columns=missing, use_threads=False)
                for n in missing:
                    entry[n] = table.column(n).to_numpy()
                if cache is not None:
                    cache.put((meta.uid, k), entry)
            got.append(entry)
    except pa.ArrowException as exc:
        raise CorruptionError(meta.path, 0, f"row group decode failed: {exc}") from exc
    finally:
        if f is not None:
            f.close()
    return got
