"""hazardwatch: stream."""
