"""`hazardwatch evaluate` parsing: the whole-chunk fast path gives exactly what parsing one line
at a time gives — same readings, same bad lines reported with the same line numbers — on
adversarial input, and the byte chunking never splits or loses a line."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hazardwatch.commands.evaluate as evaluate
from hazardwatch.commands.evaluate import EvaluateSummary, _Timestamps, parse_chunk
from stream.engine import ReadingBatch

INDEX = {"A": 0, "B": 1, "q": 2}
GOOD = [
    b'{"ts": "2024-05-01T08:00:00.050+08:00", "tag": "A", "v": 1.5}',
    b'{"ts": "2024-05-01T08:00:00.050+08:00", "gw": "GW1", "tag": "B", "v": 7}',
    b'{"ts": 1714521600000, "tag": "A", "v": null}',
    b'{"ts": "2024-05-01T00:00:01Z", "tag": "q", "v": -3.25, "q": 1}',
    b'{"tag": "B", "v": 2.0, "q": -128, "ts": 1714521601000}\r',
    b'{"ts": "2024-05-01T00:00:02+00:00", "tag": "A", "v": 1e300}',
    b'{"ts": 1714521602000, "tag": "A", "v": 4.0, "\\u0071": 3}',
]
BAD = [
    b"not json",
    b"",
    b"   ",
    b'{"ts": "2024-05-01T00:10:00", "tag": "A", "v": 1}',  # no offset
    b'{"ts": 1714521600000, "tag": "NOPE", "v": 1}',
    b'{"ts": true, "tag": "A", "v": 1}',
    b'{"ts": 1, "tag": "A", "v": true}',
    b'{"ts": 1714521600000, "tag": "A", "v": "1.5"}',
    b'{"ts": 1714521600000, "tag": "A", "v": 1, "q": 300}',
    b'{"ts": 1714521600000, "tag": "A", "v": 1, "q": 1.0}',
    b'{"ts": 1714521600000, "tag": "A", "v": 1, "q": true}',
    b'{"ts": 1714521600000, "tag": "A"}',
    b'{"ts": 18446744073709551615, "tag": "A", "v": 1}',
    b'{"ts": 1714521600000, "tag": "A", "v": 1}, {"ts": 1714521600000, "tag": "B", "v": 2}',
    b'[{"ts": 1714521600000, "tag": "A", "v": 1}]',
    b'{"ts": 1714521600000, "tag": ["A"], "v": 1}',
]


def _arrays(batch: ReadingBatch) -> list[list[object]]:
    return [batch.tag.tolist(), batch.ts.tolist(), np.nan_to_num(batch.value, nan=-0.5).tolist(),
            batch.quality.tolist()]  # fmt: skip


def _one_by_one(lines: list[bytes]) -> tuple[list[list[object]], EvaluateSummary, str]:
    summary = EvaluateSummary()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        batch = evaluate._parse_lines(lines, 1, INDEX, _Timestamps(), summary)
    return _arrays(batch), summary, err.getvalue()


@pytest.mark.parametrize("piece", [1, 3, 1000])
@settings(max_examples=80, deadline=None)
@given(lines=st.lists(st.sampled_from(GOOD + BAD), max_size=30), newline_at_end=st.booleans())
def test_chunk_parse_equals_line_by_line(piece: int, lines: list[bytes],
                                         newline_at_end: bool) -> None:  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate, "FALLBACK_LINES", piece)
        _check_chunk(lines, newline_at_end)


def _check_chunk(lines: list[bytes], newline_at_end: bool) -> None:
    chunk = b"\n".join(lines) + (b"\n" if newline_at_end and lines else b"")
    summary = EvaluateSummary()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        got = _arrays(parse_chunk(chunk, 1, INDEX, _Timestamps(), summary))
    want, want_summary, want_err = _one_by_one(lines)
    assert got == want
    assert summary.bad_lines == want_summary.bad_lines
    assert summary.bad_reasons == want_summary.bad_reasons
    assert err.getvalue() == want_err


@settings(max_examples=40, deadline=None)
@given(lines=st.lists(st.sampled_from(GOOD + BAD), max_size=40), size=st.integers(1, 300))
def test_chunks_keep_every_line(lines: list[bytes], size: int) -> None:
    data = b"\n".join(lines)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(evaluate, "CHUNK_BYTES", size)
        chunks = list(evaluate.read_chunks(io.BytesIO(data)))
    assert b"".join(chunks) == data
    assert all(c.endswith(b"\n") for c in chunks[:-1])
    assert sum(evaluate._count_lines(c) for c in chunks) == len(io.BytesIO(data).readlines())


def test_bad_line_numbers_are_absolute_in_a_large_chunk(capsys: pytest.CaptureFixture[str]) -> None:
    lines = [GOOD[0]] * 2500
    lines[1234] = b"not json"
    lines[2401] = BAD[4]
    summary = EvaluateSummary()
    batch = parse_chunk(b"\n".join(lines) + b"\n", 101, INDEX, _Timestamps(), summary)
    assert len(batch) == 2498 and summary.bad_lines == 2
    err = capsys.readouterr().err
    assert "line 1335:" in err and "line 2502: unknown tag 'NOPE'" in err
