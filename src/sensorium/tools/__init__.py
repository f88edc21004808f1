"""Client-side tools behind `sensorium generate`, `bench` and `stats` (see docs/tools.md)."""
