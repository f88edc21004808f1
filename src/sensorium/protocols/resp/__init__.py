"""Redis protocol (RESP2/RESP3) front end: RedisTimeSeries' TS.* commands over TCP.

``serve_resp(db, host, port)`` starts it; see ``docs/protocols/resp.md``.
"""

from .server import serve_resp

__all__ = ["serve_resp"]
