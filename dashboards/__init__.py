"""hazardwatch: dashboards."""
