"""InfluxDB line protocol: ``parser`` turns a body into sample columns (sans-IO)."""

from .parser import PRECISIONS, V1_PRECISIONS, LineError, ParsedBatch, parse

__all__ = ["PRECISIONS", "V1_PRECISIONS", "LineError", "ParsedBatch", "parse"]
