"""Write-ahead log record codec: sample batches and metadata operations (write path, step 2).

Pure bytes in, bytes out; no I/O. ``wal.py`` frames and checksums what this module encodes, and
replay hands the payloads back here. A record is one type byte followed by a body; the byte
layout is drawn in ``docs/format/wal.md``.

Sample records are the hot path (10k-row batches, hundreds per second), so they are plain
little-endian numpy columns: encoding is one memory copy and decoding is zero-copy. They are
not compressed: measured on a 10k-row batch, lz4 and zstd each cost more time than they save in
``write`` + ``fdatasync`` (see the numbers in ``docs/format/wal.md``). The ``flags`` byte is
reserved so that a compressed variant can be added later without a new record type.

Every function here is pure and thread-safe.
"""

from __future__ import annotations

import enum
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CorruptionError

Buffer = bytes | bytearray | memoryview

# Sample record header: type u8, flags u8, reserved u16, row count u32. Eight bytes, so the
# int64/float64 columns that follow stay 8-byte aligned within the record.
_SAMPLES_HEADER = struct.Struct("<BBHI")
_TS = np.dtype("<i8")
_VALUES = np.dtype("<f8")
_SIDS = np.dtype("<i4")
_BYTES_PER_ROW = _TS.itemsize + _VALUES.itemsize + _SIDS.itemsize
# Where decode errors point: records are pure bytes, the WAL adds the real file and offset.
_WHERE = "<wal record>"


class RecordType(enum.IntEnum):
    """First byte of every record. Values are on disk: never renumber, only add."""

    SAMPLES = 1
    META = 2


@dataclass(frozen=True, slots=True, eq=False)
class SamplesRecord:
    """Rows to store, already resolved by ``head_append`` ("last write wins" on replay).

    The arrays returned by ``decode`` are read-only views into the record's bytes (zero-copy);
    they keep that buffer alive. Copy them before modifying.
    """

    sids: np.ndarray  # int32 series ids
    ts: np.ndarray  # int64 epoch ms
    values: np.ndarray  # float64; NaN marks a deleted sample and round-trips bit for bit


@dataclass(frozen=True, slots=True)
class MetaRecord:
    """A rare metadata operation: series create/alter/delete, rule create/delete, range delete."""

    kind: str
    payload: dict[str, Any]


Record = SamplesRecord | MetaRecord


def encode_samples(sids: np.ndarray, ts: np.ndarray, values: np.ndarray) -> bytes:
    """Encode one batch of rows as a sample record.

    Args:
        sids: series ids, 1-D, converted to int32 (values must fit).
        ts: timestamps in epoch ms, 1-D, converted to int64.
        values: sample values, 1-D, converted to float64.

    Returns:
        ``8 + 20 * len(ts)`` bytes.

    Raises:
        ValueError: the columns are not 1-D, differ in length, or a sid does not fit int32.
    """
    sids_le = _column(sids, _SIDS, "sids")
    ts_le = _column(ts, _TS, "ts")
    values_le = _column(values, _VALUES, "values")
    n = len(ts_le)
    if len(sids_le) != n or len(values_le) != n:
        raise ValueError(
            f"columns differ in length: sids {len(sids_le)}, ts {n}, values {len(values_le)}"
        )
    header = _SAMPLES_HEADER.pack(RecordType.SAMPLES, 0, 0, n)
    # bytes.join copies each column's buffer once, straight into the result.
    return b"".join((header, ts_le.data, values_le.data, sids_le.data))


def decode_samples(record: Buffer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode a sample record into read-only ``(sids, ts, values)`` views of ``record``.

    Raises:
        CorruptionError: not a sample record, unknown flags, or the size disagrees with the
            row count.
    """
    view = memoryview(record).cast("B")
    if len(view) < _SAMPLES_HEADER.size:
        raise CorruptionError(_WHERE, 0, f"sample record of {len(view)} bytes has no header")
    rtype, flags, _, n = _SAMPLES_HEADER.unpack_from(view)
    if rtype != RecordType.SAMPLES:
        raise CorruptionError(_WHERE, 0, f"record type {rtype} is not a sample record")
    if flags != 0:
        raise CorruptionError(_WHERE, 1, f"unknown sample record flags {flags:#04x}")
    expected = _SAMPLES_HEADER.size + n * _BYTES_PER_ROW
    if len(view) != expected:
        raise CorruptionError(
            _WHERE, 4, f"{n} rows need {expected} bytes, the record has {len(view)}"
        )
    offset = _SAMPLES_HEADER.size
    ts = np.frombuffer(view, _TS, n, offset)
    offset += n * _TS.itemsize
    values = np.frombuffer(view, _VALUES, n, offset)
    offset += n * _VALUES.itemsize
    sids = np.frombuffer(view, _SIDS, n, offset)
    for column in (sids, ts, values):
        column.flags.writeable = False  # also when ``record`` is a writable bytearray
    return sids, ts, values


def encode_meta(kind: str, payload: dict[str, Any]) -> bytes:
    """Encode a metadata operation as type byte + UTF-8 JSON.

    Args:
        kind: the operation, e.g. ``"series.create"``; opaque to this module.
        payload: JSON-serialisable dict (str keys; plain ints, floats, strs, lists, dicts).

    Raises:
        TypeError: ``payload`` is not JSON-serialisable.
    """
    if not isinstance(payload, dict):
        raise TypeError(f"meta payload must be a dict, not {type(payload).__name__}")
    body = json.dumps({"kind": kind, "payload": payload}, separators=(",", ":"))
    return bytes((RecordType.META,)) + body.encode()


def decode_meta(record: Buffer) -> tuple[str, dict[str, Any]]:
    """Decode a metadata record into ``(kind, payload)``.

    Raises:
        CorruptionError: not a metadata record, or its body is not the expected JSON object.
    """
    view = memoryview(record).cast("B")
    if len(view) == 0 or view[0] != RecordType.META:
        rtype = view[0] if len(view) else None
        raise CorruptionError(_WHERE, 0, f"record type {rtype} is not a meta record")
    try:
        obj = json.loads(bytes(view[1:]))
        kind, payload = obj["kind"], obj["payload"]
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptionError(_WHERE, 1, f"bad meta record body: {exc}") from exc
    if not isinstance(kind, str) or not isinstance(payload, dict):
        raise CorruptionError(_WHERE, 1, "meta record body is not {kind: str, payload: dict}")
    return kind, payload


def decode(record: Buffer) -> Record:
    """Decode any record by its type byte.

    Raises:
        CorruptionError: empty record, unknown type, or a malformed body.
    """
    if len(record) == 0:
        raise CorruptionError(_WHERE, 0, "empty record")
    rtype = memoryview(record).cast("B")[0]
    if rtype == RecordType.SAMPLES:
        return SamplesRecord(*decode_samples(record))
    if rtype == RecordType.META:
        return MetaRecord(*decode_meta(record))
    raise CorruptionError(_WHERE, 0, f"unknown record type {rtype}")


def _column(a: np.ndarray, dtype: np.dtype[Any], name: str) -> np.ndarray:
    """``a`` as a contiguous 1-D array of ``dtype``; no copy when it already is one."""
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.dtype == dtype:
        return np.ascontiguousarray(arr)
    out = np.ascontiguousarray(arr, dtype=dtype)
    if dtype.kind == "i" and not np.array_equal(out, arr):
        raise ValueError(f"{name} do not fit {dtype}")
    return out
