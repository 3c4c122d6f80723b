"""hazardwatch: simulators."""
