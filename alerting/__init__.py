"""hazardwatch: alerting."""
