"""Sensorium's exception tree; protocols map these to wire errors at their edge.

    SensoriumError
    ├── InvalidSampleError          a sample (or its timestamp/value) is refused
    │   ├── OutOfRetention          older than the series' retention window
    │   ├── DuplicateSample         BLOCK policy and the timestamp already holds a sample
    │   └── TooOld                  INCRBY/DECRBY before the series' last timestamp
    ├── SeriesNotFound              the key does not exist
    ├── SeriesExists                the key already exists
    ├── InvalidArgument             a bad option value (policy, aggregator, filter, …)
    ├── RuleError                   a downsampling rule cannot be created or removed
    ├── CorruptionError(path, offset)  a log or block failed its checksum
    ├── EngineClosed                the database was closed
    └── LockedError                 another process holds the data directory

Messages follow RedisTimeSeries' texts where one exists, without the ``TSDB: `` prefix.
"""

from __future__ import annotations


class SensoriumError(Exception):
    """Base of every error Sensorium raises on purpose."""


class InvalidSampleError(SensoriumError):
    """A sample was refused; the rest of its batch is unaffected."""


class OutOfRetention(InvalidSampleError):
    def __init__(self, message: str = "Timestamp is older than retention") -> None:
        super().__init__(message)


class DuplicateSample(InvalidSampleError):
    def __init__(
        self,
        message: str = (
            "Error at upsert, update is not supported when DUPLICATE_POLICY is set to BLOCK mode"
        ),
    ) -> None:
        super().__init__(message)


class TooOld(InvalidSampleError):
    def __init__(
        self,
        message: str = "timestamp must be equal to or higher than the maximum existing timestamp",
    ) -> None:
        super().__init__(message)


class SeriesNotFound(SensoriumError, KeyError):
    def __init__(self, key: str = "") -> None:
        super().__init__("the key does not exist")
        self.key = key

    def __str__(self) -> str:
        return "the key does not exist"


class SeriesExists(SensoriumError):
    def __init__(self, key: str = "") -> None:
        super().__init__("key already exists")
        self.key = key


class InvalidArgument(SensoriumError, ValueError):
    """An option or argument has a value the engine cannot use."""


class RuleError(SensoriumError):
    """A downsampling rule cannot be created or deleted."""


class CorruptionError(SensoriumError):
    def __init__(self, path: str, offset: int, reason: str) -> None:
        super().__init__(f"{path} at byte {offset}: {reason}")
        self.path = path
        self.offset = offset
        self.reason = reason


class EngineClosed(SensoriumError):
    def __init__(self) -> None:
        super().__init__("the database is closed")


class LockedError(SensoriumError):
    def __init__(self, path: str) -> None:
        super().__init__(f"data directory {path} is already open in another process")
        self.path = path
