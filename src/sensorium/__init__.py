"""Sensorium: an embedded-first IoT time-series database.

    import sensorium
    with sensorium.open("./data") as ts:
        ts.add("sensor:1", "*", 21.5)
"""

from .config import DatabaseOptions
from .database import Database, open
from .engine.db import AppendResult
from .errors import (
    CorruptionError,
    DuplicateSample,
    EngineClosed,
    InvalidArgument,
    InvalidSampleError,
    LockedError,
    OutOfRetention,
    RuleError,
    SensoriumError,
    SeriesExists,
    SeriesNotFound,
    TooOld,
)
from .model import DuplicatePolicy

__all__ = [
    "AppendResult", "CorruptionError", "Database", "DatabaseOptions", "DuplicatePolicy",
    "DuplicateSample", "EngineClosed", "InvalidArgument", "InvalidSampleError", "LockedError",
    "OutOfRetention", "RuleError", "SensoriumError", "SeriesExists", "SeriesNotFound", "TooOld",
    "open",
]
