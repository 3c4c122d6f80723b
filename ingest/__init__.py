"""hazardwatch: ingest."""
