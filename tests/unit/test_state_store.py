"""The embedded runner's state store: delta saves restore the exact engine, held lines survive."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import numpy as np

from stream.engine import ReadingBatch, RiskEngine
from stream.runners.state_store import StateStore, snapshot_members
from stream.tagtable import TagSpec, TagTable
from tests.engine_fixtures import small_plant

T0 = 1_763_800_000_000


def wide_plant(n: int) -> TagTable:
    """`n` level tags with H/HH limits, 10 per unit, 100 per source."""
    specs = [
        TagSpec(f"T{i}", f"U{i // 10}", f"S{i // 100}", "E1", limits={"H": 80.0, "HH": 90.0},
                deadband=1.0, on_delay_s=0, off_delay_s=0, expected_interval_s=10.0,
                range_min=0.0, range_max=100.0)
        for i in range(n)
    ]  # fmt: skip
    return TagTable.build(specs, [], {f"S{k}": 1 for k in range(n // 100 + 1)})


def test_members_are_exactly_the_engine_snapshot() -> None:
    table = small_plant()
    engine = RiskEngine(table)
    engine.process(ReadingBatch.of([0, 1, 2], [T0, T0, T0 + 5], [9.5, 9.6, 3.0]))
    engine.advance(T0 + 60_000)
    members = snapshot_members(engine.state, table)
    with np.load(io.BytesIO(engine.snapshot())) as archive:
        assert sorted(archive.files) == sorted(members)
        for name in archive.files:
            np.testing.assert_array_equal(archive[name], members[name], err_msg=name)


def test_delta_save_writes_only_changed_chunks_and_restores_the_same_engine(
    tmp_path: Path,
) -> None:
    table = wide_plant(20_000)
    engine = RiskEngine(table)
    engine.process(ReadingBatch.of(np.arange(20_000), np.full(20_000, T0), np.full(20_000, 50.0)))
    store = StateStore(tmp_path / "engine.db", chunk_bytes=4096)
    store.save(snapshot_members(engine.state, table), T0)
    full_bytes = store.stats.bytes_written

    # One tag crosses HH: the alarm touches a handful of chunks, not the whole state.
    events = engine.process(ReadingBatch.of([12_345], [T0 + 1000], [95.0]))
    assert events, "the HH crossing should raise an alarm"
    store.save(snapshot_members(engine.state, table), T0 + 1000, held=["alarm_v1 line"])
    delta_bytes = store.stats.bytes_written - full_bytes
    assert 0 < delta_bytes < full_bytes / 20
    store.close()

    reopened = StateStore(tmp_path / "engine.db")
    blob = reopened.load()
    assert blob is not None
    restored = RiskEngine.restore(table, None, blob)
    assert restored.snapshot() == engine.snapshot()
    # The restored engine carries on: the alarm is not raised again, clearing it is reported.
    again = ReadingBatch.of([12_345], [T0 + 2000], [96.0])
    assert restored.process(again) == engine.process(again) == []
    clear = ReadingBatch.of([12_345], [T0 + 3000], [50.0])
    assert restored.process(clear) == engine.process(clear) != []
    assert reopened.held_lines()[0][1] == ["alarm_v1 line"]


def test_held_lines_survive_until_released(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "engine.db")
    first = store.hold(["a 1", "a 2"])
    second = store.hold(["b 1"])
    assert store.hold([]) == 0
    store.release(first)
    store.close()
    reopened = StateStore(tmp_path / "engine.db")
    assert reopened.held_lines() == [(second, ["b 1"])]


def test_version_1_snapshot_is_read_and_replaced_by_the_first_save(tmp_path: Path) -> None:
    table = small_plant()
    engine = RiskEngine(table)
    engine.process(ReadingBatch.of([1], [T0], [9.5]))
    db = sqlite3.connect(tmp_path / "engine.db")
    db.execute("CREATE TABLE engine_state_v1 (id INTEGER PRIMARY KEY, saved_ms INTEGER, "
               "snapshot BLOB)")  # fmt: skip
    db.execute("INSERT INTO engine_state_v1 VALUES (1, ?, ?)", (T0, engine.snapshot()))
    db.commit()
    db.close()

    store = StateStore(tmp_path / "engine.db")
    assert store.load() == engine.snapshot()
    engine.process(ReadingBatch.of([1], [T0 + 1000], [5.0]))
    store.save(snapshot_members(engine.state, table), T0 + 1000)
    store.close()
    blob = StateStore(tmp_path / "engine.db").load()
    assert blob is not None
    assert RiskEngine.restore(table, None, blob).snapshot() == engine.snapshot()
