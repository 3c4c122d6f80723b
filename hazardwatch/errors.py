"""One root for every error hazardwatch raises on purpose (STYLE.md practice 10)."""


class HazardwatchError(Exception):
    """Root of all hazardwatch errors; edges turn these into counted rejections."""


class ConfigError(HazardwatchError):
    """A plant, policy or settings file is invalid."""


class BackpressureError(HazardwatchError):
    """A sink or queue is full; the caller must slow down or spool, never drop."""
