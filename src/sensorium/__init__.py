"""Sensorium: an embedded-first IoT time-series database."""
