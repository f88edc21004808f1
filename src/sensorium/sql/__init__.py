"""SQL analytics over all stored data through DuckDB (see ``docs/sql.md``).

``SqlEngine(db).query("SELECT …")`` runs one query in Sensorium's dialect over the tables
``samples``, ``tier_<bucket>``, ``series`` and ``tiers``. The engine never imports this
package; it reads through the engine's read functions under the engine lock.
"""

from .session import QueryError, QueryResult, ReadStats, SqlEngine

__all__ = ["QueryError", "QueryResult", "ReadStats", "SqlEngine"]
