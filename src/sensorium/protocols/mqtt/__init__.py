"""MQTT ingestion: topic templates → labels, JSON and line-protocol payloads, a subscriber
that acknowledges QoS 1 messages after their durable write (docs/protocols/mqtt.md)."""
