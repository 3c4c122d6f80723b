"""Runners: the embedded single-process pipeline and the faust-streaming worker factory."""
