"""Sinks: where evaluated readings and events go (InfluxDB; the alert outbox lives in alerting/)."""
