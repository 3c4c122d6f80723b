"""`reading_v1` line protocol: escaping, number formats, quality and non-finite values."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hazardwatch.plant.loader import load_plant
from stream.sinks.lines import ReadingLines

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_lines_carry_tags_value_quality_and_ms_and_skip_non_finite() -> None:
    tags = load_plant(EXAMPLES / "tank-farm.yaml").resolved_tags()
    lines = ReadingLines(tags)
    idx = np.array([0, 1, 0, 1, 0], np.int32)
    ts = np.array([1, 2, 3, 4, 1_795_370_636_120], np.int64)
    value = np.array([1.5, -0.1, np.nan, np.inf, 1e-07])
    good = lines.lines(idx, ts, value, np.zeros(5, np.int8))
    assert [ln.split(" v=")[1] for ln in good] == ["1.5,q=0i 1", "-0.1,q=0i 2",
                                                   "1e-07,q=0i 1795370636120"]  # fmt: skip
    t0 = tags[0]
    assert good[0].startswith(
        f"reading_v1,enterprise={t0.enterprise},quantity={t0.quantity},source={t0.source},"
        f"tag={t0.id},unit={t0.unit} v="
    )
    bad = lines.lines(idx, ts, value, np.array([0, 3, 0, 0, 127], np.int8))
    assert [ln.split(" v=")[1] for ln in bad] == ["1.5,q=0i 1", "-0.1,q=3i 2",
                                                  "1e-07,q=127i 1795370636120"]  # fmt: skip
    assert bad[0].split(" v=")[0] == good[0].split(" v=")[0]
