"""HTTP front end: JSON and InfluxDB line-protocol ingest, REST queries, InfluxDB probes.

``create_app(db, HttpOptions(...))`` builds the ASGI app; ``sensorium serve`` runs it. See
``docs/protocols/http.md``.
"""

from .app import HttpOptions, create_app

__all__ = ["HttpOptions", "create_app"]
