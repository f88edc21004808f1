# ruff: noqa
"""The user's IoTTimeSeriesManager (shared/seeds/000_48aa57c5ab11bcb6.txt, section 4.1), verbatim
but for this docstring and the logging setup; tests point REDIS_CONFIG at our server.
"""

import time
from typing import List, Dict, Any, Optional, Tuple
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import logging
from enum import Enum

import redis
from redis.commands.timeseries.commands import TimeSeriesCommands

# Configuration
logger = logging.getLogger(__name__)

REDIS_CONFIG = {
    'host': 'localhost',
    'port': 6379,  # the test sets the port of its server
    'db': 0,
    'decode_responses': False
}

# Constants
BATCH_SIZE = 100
RETENTION_POLICIES = {
    'raw': 7 * 24 * 3600 * 1000,      # 7 days in ms
    '1min': 365 * 24 * 3600 * 1000,   # 1 year in ms
    '1hour': 5 * 365 * 24 * 3600 * 1000,  # 5 years in ms
}


# ============================================================================
# Data Classes
# ============================================================================

class AggregationType(Enum):
    AVG = "avg"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    RANGE = "range"
    COUNT = "count"
    FIRST = "first"
    LAST = "last"
    STD_P = "std.p"  # Standard deviation (population)
    STD_S = "std.s"  # Standard deviation (sample)


@dataclass
class SensorDataPoint:
    """Point de données d'un capteur"""
    sensor_id: str
    timestamp: int  # Unix timestamp in milliseconds
    value: float
    unit: Optional[str] = None
    metadata: Dict[str, Any] = field(default_factory=dict)


@dataclass
class TimeSeriesConfig:
    """Configuration d'une time-series"""
    sensor_id: str
    retention_ms: int
    labels: Dict[str, str]
    duplicate_policy: str = "LAST"  # LAST, FIRST, MIN, MAX, SUM


@dataclass
class CompactionRule:
    """Règle de compaction"""
    source_key: str
    dest_key: str
    aggregation: AggregationType
    bucket_size_ms: int


# ============================================================================
# IoT Time-Series Manager
# ============================================================================

class IoTTimeSeriesManager:
    """
    Gestionnaire de time-series IoT avec RedisTimeSeries

    Features:
    - High-frequency ingestion (1M points/sec)
    - Automatic downsampling avec compaction rules
    - Multi-level aggregations
    - Flexible querying
    - Alerting support
    """

    def __init__(self, redis_config: Dict = None):
        redis_conf = redis_config or REDIS_CONFIG
        self.redis = redis.Redis(**redis_conf)
        self.ts: TimeSeriesCommands = self.redis.ts()

        # Test connexion
        try:
            self.redis.ping()
            logger.info("IoTTimeSeriesManager initialized")
        except redis.RedisError as e:
            logger.error(f"Redis connection failed: {e}")
            raise

    # ========================================================================
    # Time-Series Creation
    # ========================================================================

    def create_sensor_timeseries(self, config: TimeSeriesConfig) -> bool:
        """
        Créer une time-series pour un capteur

        Args:
            config: Configuration de la time-series

        Returns:
            True si créée, False si existe déjà
        """
        key = f"sensor:{config.sensor_id}:raw"

        try:
            # Check if exists
            try:
                self.ts.info(key)
                logger.debug(f"Time-series already exists: {key}")
                return False
            except:
                pass

            # Create time-series
            self.ts.create(
                key,
                retention_msecs=config.retention_ms,
                duplicate_policy=config.duplicate_policy,
                labels=config.labels
            )

            logger.info(f"Time-series created: {key}")

            # Create compaction rules
            self._create_compaction_rules(config.sensor_id)

            return True

        except redis.RedisError as e:
            logger.error(f"Failed to create time-series: {e}")
            return False

    def _create_compaction_rules(self, sensor_id: str):
        """
        Créer règles de compaction automatique

        Hierarchy:
        raw (1s) → 1min (avg/max/min) → 1hour (avg/max/min) → 1day (avg/max/min)
        """
        raw_key = f"sensor:{sensor_id}:raw"

        # Level 1: raw → 1min aggregates
        aggregations_1min = [
            (AggregationType.AVG, "1min"),
            (AggregationType.MAX, "1min_max"),
            (AggregationType.MIN, "1min_min"),
            (AggregationType.SUM, "1min_sum"),
        ]

        for agg_type, suffix in aggregations_1min:
            dest_key = f"sensor:{sensor_id}:{suffix}"

            # Create destination time-series
            try:
                self.ts.create(
                    dest_key,
                    retention_msecs=RETENTION_POLICIES['1min'],
                    labels={"sensor_id": sensor_id, "aggregation": agg_type.value, "interval": "1min"}
                )
            except:
                pass  # Already exists

            # Create compaction rule
            try:
                self.ts.createrule(
                    raw_key,
                    dest_key,
                    aggregation_type=agg_type.value,
                    bucket_size_msec=60000  # 1 minute
                )
                logger.debug(f"Compaction rule created: {raw_key} → {dest_key} ({agg_type.value})")
            except Exception as e:
                logger.warning(f"Failed to create rule: {e}")

        # Level 2: 1min → 1hour aggregates
        min_key = f"sensor:{sensor_id}:1min"
        aggregations_1hour = [
            (AggregationType.AVG, "1hour"),
            (AggregationType.MAX, "1hour_max"),
            (AggregationType.MIN, "1hour_min"),
        ]

        for agg_type, suffix in aggregations_1hour:
            dest_key = f"sensor:{sensor_id}:{suffix}"

            try:
                self.ts.create(
                    dest_key,
                    retention_msecs=RETENTION_POLICIES['1hour'],
                    labels={"sensor_id": sensor_id, "aggregation": agg_type.value, "interval": "1hour"}
                )
            except:
                pass

            try:
                self.ts.createrule(
                    min_key,
                    dest_key,
                    aggregation_type=agg_type.value,
                    bucket_size_msec=3600000  # 1 hour
                )
            except Exception as e:
                logger.warning(f"Failed to create rule: {e}")

        # Level 3: 1hour → 1day aggregates
        hour_key = f"sensor:{sensor_id}:1hour"

        day_key = f"sensor:{sensor_id}:1day"
        try:
            self.ts.create(
                day_key,
                retention_msecs=0,  # Forever
                labels={"sensor_id": sensor_id, "aggregation": "avg", "interval": "1day"}
            )
        except:
            pass

        try:
            self.ts.createrule(
                hour_key,
                day_key,
                aggregation_type="avg",
                bucket_size_msec=86400000  # 1 day
            )
        except Exception as e:
            logger.warning(f"Failed to create rule: {e}")

    # ========================================================================
    # Data Ingestion
    # ========================================================================

    def add_datapoint(
        self,
        sensor_id: str,
        value: float,
        timestamp: Optional[int] = None
    ) -> int:
        """
        Ajouter un point de données (usage simple)

        Args:
            sensor_id: ID du capteur
            value: Valeur mesurée
            timestamp: Timestamp en ms (None = now)

        Returns:
            Timestamp du point ajouté
        """
        key = f"sensor:{sensor_id}:raw"

        try:
            ts = self.ts.add(key, timestamp or "*", value)
            return ts
        except redis.RedisError as e:
            logger.error(f"Failed to add datapoint: {e}")
            raise

    def ingest_batch(
        self,
        datapoints: List[SensorDataPoint],
        batch_size: int = BATCH_SIZE
    ) -> Dict[str, int]:
        """
        Ingestion batch optimisée (usage production)

        Args:
            datapoints: Liste de points à ingérer
            batch_size: Taille des batches pour pipeline

        Returns:
            Stats: {"success": N, "failed": M, "duration_ms": X}
        """
        start_time = time.time()
        success = 0
        failed = 0

        pipe = self.redis.pipeline()
        batch_count = 0

        for dp in datapoints:
            key = f"sensor:{dp.sensor_id}:raw"

            try:
                pipe.ts().add(key, dp.timestamp, dp.value)
                batch_count += 1

                # Execute batch when full
                if batch_count >= batch_size:
                    results = pipe.execute()
                    success += len([r for r in results if r])
                    failed += len([r for r in results if not r])

                    pipe = self.redis.pipeline()
                    batch_count = 0

            except Exception as e:
                logger.error(f"Failed to add to pipeline: {e}")
                failed += 1

        # Execute remaining
        if batch_count > 0:
            results = pipe.execute()
            success += len([r for r in results if r])
            failed += len([r for r in results if not r])

        duration_ms = (time.time() - start_time) * 1000

        logger.info(
            f"Batch ingested: {success} success, {failed} failed, "
            f"{duration_ms:.2f}ms ({success/duration_ms*1000:.0f} points/sec)"
        )

        return {
            "success": success,
            "failed": failed,
            "duration_ms": duration_ms
        }

    # ========================================================================
    # Querying
    # ========================================================================

    def get_range(
        self,
        sensor_id: str,
        from_time: int,
        to_time: int,
        aggregation: Optional[AggregationType] = None,
        bucket_size_ms: Optional[int] = None
    ) -> List[Tuple[int, float]]:
        """
        Récupérer données pour une plage temporelle

        Args:
            sensor_id: ID du capteur
            from_time: Timestamp début (ms)
            to_time: Timestamp fin (ms)
            aggregation: Type d'agrégation (None = raw)
            bucket_size_ms: Taille bucket pour aggregation

        Returns:
            Liste de (timestamp, value)
        """
        # Auto-select optimal granularity
        key = self._select_optimal_key(sensor_id, from_time, to_time)

        try:
            if aggregation and bucket_size_ms:
                result = self.ts.range(
                    key,
                    from_time,
                    to_time,
                    aggregation_type=aggregation.value,
                    bucket_size_msec=bucket_size_ms
                )
            else:
                result = self.ts.range(key, from_time, to_time)

            return [(int(ts), float(val)) for ts, val in result]

        except redis.RedisError as e:
            logger.error(f"Query failed: {e}")
            return []

    def _select_optimal_key(
        self,
        sensor_id: str,
        from_time: int,
        to_time: int
    ) -> str:
        """
        Sélectionner clé optimale selon la plage temporelle

        Strategy:
        - < 1 hour: Use raw (1s)
        - 1 hour - 7 days: Use 1min aggregates
        - 7 days - 1 year: Use 1hour aggregates
        - > 1 year: Use 1day aggregates
        """
        duration_ms = to_time - from_time
        duration_hours = duration_ms / (3600 * 1000)

        if duration_hours < 1:
            return f"sensor:{sensor_id}:raw"
        elif duration_hours <= 168:  # 7 days
            return f"sensor:{sensor_id}:1min"
        elif duration_hours <= 8760:  # 1 year
            return f"sensor:{sensor_id}:1hour"
        else:
            return f"sensor:{sensor_id}:1day"

    def get_multi_range(
        self,
        filters: Dict[str, str],
        from_time: int,
        to_time: int,
        aggregation: Optional[AggregationType] = None,
        bucket_size_ms: Optional[int] = None
    ) -> Dict[str, List[Tuple[int, float]]]:
        """
        Query multiple sensors avec filtres

        Args:
            filters: Labels filters {"zone": "A", "type": "temperature"}
            from_time: Start timestamp
            to_time: End timestamp
            aggregation: Aggregation type
            bucket_size_ms: Bucket size

        Returns:
            Dict {sensor_id: [(timestamp, value), ...]}
        """
        try:
            if aggregation and bucket_size_ms:
                results = self.ts.mrange(
                    from_time,
                    to_time,
                    filters=filters,
                    aggregation_type=aggregation.value,
                    bucket_size_msec=bucket_size_ms
                )
            else:
                results = self.ts.mrange(from_time, to_time, filters=filters)

            # Parse results
            parsed = {}
            for key, labels, data in results:
                sensor_id = key.decode().split(":")[1] if isinstance(key, bytes) else key.split(":")[1]
                parsed[sensor_id] = [(int(ts), float(val)) for ts, val in data]

            return parsed

        except redis.RedisError as e:
            logger.error(f"Multi-range query failed: {e}")
            return {}

    def get_latest(self, sensor_id: str) -> Optional[Tuple[int, float]]:
        """Récupérer dernière valeur"""
        key = f"sensor:{sensor_id}:raw"

        try:
            result = self.ts.get(key)
            if result:
                return (int(result[0]), float(result[1]))
            return None
        except redis.RedisError as e:
            logger.error(f"Failed to get latest: {e}")
            return None

    # ========================================================================
    # Analytics
    # ========================================================================

    def calculate_statistics(
        self,
        sensor_id: str,
        from_time: int,
        to_time: int
    ) -> Dict[str, float]:
        """
        Calculer statistiques sur une période

        Returns:
            {"avg": X, "min": Y, "max": Z, "count": N, "stddev": S}
        """
        # Use pre-aggregated data if available
        key_min = f"sensor:{sensor_id}:1min"

        try:
            # Get all aggregations
            avg_data = self.ts.range(key_min, from_time, to_time)

            if not avg_data:
                return {}

            values = [float(val) for _, val in avg_data]

            # Calculate statistics
            import statistics

            return {
                "avg": statistics.mean(values),
                "min": min(values),
                "max": max(values),
                "count": len(values),
                "stddev": statistics.stdev(values) if len(values) > 1 else 0.0
            }

        except Exception as e:
            logger.error(f"Statistics calculation failed: {e}")
            return {}

    # ========================================================================
    # Alerting
    # ========================================================================

    def check_threshold_alert(
        self,
        sensor_id: str,
        threshold: float,
        operator: str = ">"
    ) -> bool:
        """
        Vérifier seuil d'alerte

        Args:
            sensor_id: ID du capteur
            threshold: Seuil
            operator: Opérateur (>, <, >=, <=, ==)

        Returns:
            True si alerte déclenchée
        """
        latest = self.get_latest(sensor_id)

        if not latest:
            return False

        _, value = latest

        operators = {
            ">": value > threshold,
            "<": value < threshold,
            ">=": value >= threshold,
            "<=": value <= threshold,
            "==": value == threshold
        }

        alert = operators.get(operator, False)

        if alert:
            logger.warning(
                f" Alert triggered: {sensor_id} = {value:.2f} "
                f"(threshold: {operator} {threshold})"
            )

        return alert

    def check_anomaly_detection(
        self,
        sensor_id: str,
        window_minutes: int = 60,
        std_threshold: float = 3.0
    ) -> bool:
        """
        Détection d'anomalie simple (Z-score)

        Alert si valeur actuelle > mean + (std_threshold × stddev)
        """
        now = int(time.time() * 1000)
        from_time = now - (window_minutes * 60 * 1000)

        # Get statistics
        stats = self.calculate_statistics(sensor_id, from_time, now)

        if not stats:
            return False

        # Get latest value
        latest = self.get_latest(sensor_id)
        if not latest:
            return False

        _, current_value = latest

        # Z-score
        mean = stats['avg']
        stddev = stats['stddev']

        if stddev == 0:
            return False

        z_score = abs((current_value - mean) / stddev)

        anomaly = z_score > std_threshold

        if anomaly:
            logger.warning(
                f" Anomaly detected: {sensor_id} = {current_value:.2f} "
                f"(z-score: {z_score:.2f}, threshold: {std_threshold})"
            )

        return anomaly

    # ========================================================================
    # Monitoring
    # ========================================================================

    def get_sensor_info(self, sensor_id: str) -> Dict:
        """Info complète sur un capteur"""
        key = f"sensor:{sensor_id}:raw"

        try:
            info = self.ts.info(key)

            return {
                "total_samples": info.total_samples,
                "memory_bytes": info.memory_usage,
                "first_timestamp": info.first_timestamp,
                "last_timestamp": info.last_timestamp,
                "retention_msecs": info.retention_msecs,
                "chunk_count": info.chunk_count,
                "labels": info.labels
            }
        except redis.RedisError as e:
            logger.error(f"Failed to get sensor info: {e}")
            return {}
