"""The distributed runner: a faust-streaming worker built by `create_app` (no global app).

Modules: `topics` (names, creation), `partitioning` (which hazard sources a partition holds),
`records` (telemetry records → readings), `partition` (one engine per telemetry partition),
`feed` and `enterprise` (enterprise colour and flood merged across partitions), `codec`
(table rows), `rebuild` and `commands` (side consumers), `app` (the faust wiring).
"""

from stream.runners.worker.app import WorkerRuntime, create_app

__all__ = ["WorkerRuntime", "create_app"]
