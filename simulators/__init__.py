"""Simulators: physics-based sensors, faults, incident scenarios, replay and the HTML report.

Layout:

- `signals.py` — vectorized building blocks: first-order lag, PI loop, schedules of set-points.
- `instrument.py` — what a transmitter adds to the true value: noise, drift, quantisation, range.
- `physics/` — one module per kind of equipment (tank, process loop, gas detectors, metallurgy);
  `physics/build.py` picks a model for every unit of a plant file.
- `faults.py` — sensor faults (stuck, spikes, drift, out of range, dropouts) on sample arrays and
  delivery faults (offline, clock skew, duplicates, out of order, malformed) on gateway batches.
- `scenario.py` — the scenario YAML model and its timed events.
- `engine.py` — runs a plant + scenario in time chunks into columnar readings (deterministic by
  seed); `jsonl.py` writes them fast; `gateway.py` turns them into protocol batches.
- `recording.py` / `replay.py` — read JSONL, CSV and InfluxDB line protocol; paced replay.
- `report.py` — the self-contained HTML report.

Nothing here imports a runner; the one paho-mqtt module is `mqtt_publisher.py`.
"""
