"""Errors → RESP error replies: the one place the Redis front end decides error texts.

Handlers raise; the session turns the exception into a reply here (httpx ``map_exceptions``
style). Engine errors get RedisTimeSeries' ``ERR TSDB: `` prefix; server-level refusals carry
their own Redis code (``ERR``, ``WRONGPASS``, ``NOAUTH``, ``EXECABORT``, ``NOPROTO``).

    CommandError(text)                  text as given ("ERR wrong number of arguments …")
    SensoriumError (engine, arguments)  "ERR TSDB: <message>"
    EngineClosed, LockedError,
      CorruptionError                   "ERR <message>" (not a TSDB answer: the server is sick)
    anything else                       "ERR internal error" (details go to the log)
"""

from __future__ import annotations

import logging

from ...errors import CorruptionError, EngineClosed, LockedError, SensoriumError
from .codec import Error

log = logging.getLogger("sensorium.resp")


class CommandError(Exception):
    """A refusal decided by the RESP layer itself; ``text`` starts with the error code."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def wrong_arity(name: str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{name.lower()}' command")


def syntax_error() -> CommandError:
    return CommandError("ERR syntax error")


def resp_error(exc: BaseException) -> Error:
    """The error reply for an exception raised while executing a command."""
    if isinstance(exc, CommandError):
        return Error(exc.text)
    if isinstance(exc, EngineClosed | LockedError | CorruptionError):
        return Error(f"ERR {exc}")
    if isinstance(exc, SensoriumError):
        return Error(f"ERR TSDB: {exc}")
    log.error("command failed", exc_info=exc)
    return Error("ERR internal error")
