"""hazardwatch: IoT risk monitoring and early warning for industrial work safety."""

__version__ = "0.1.0"
