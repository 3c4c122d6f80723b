"""Determinism, readings format, faults, gateway batches and recordings of the simulators."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import orjson
import pytest

from hazardwatch.plant.loader import load_plant
from ingest.decoder import Decoder
from ingest.directory import GatewayDirectory
from simulators.engine import Simulation
from simulators.faults import SensorFault, apply_faults
from simulators.gateway import MALFORMED_KINDS, GatewayFleet, malformed_payload
from simulators.jsonl import ReadingsEncoder
from simulators.recording import Rejected, parse_line_protocol, read_recording
from simulators.replay import Pacer, batches, window
from simulators.scenario import Scenario, load_scenario
from simulators.to_file import write_jsonl

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"


def _sim(name: str, **update: object) -> Simulation:
    scenario, plant_path = load_scenario(SCENARIOS / f"{name}.yaml")
    if update:
        scenario = Scenario.model_validate({**scenario.model_dump(by_alias=True), **update})
    return Simulation(load_plant(plant_path), scenario)


def _jsonl(sim: Simulation) -> bytes:
    out = io.BytesIO()
    write_jsonl(sim, out)
    return out.getvalue()


def test_same_seed_same_bytes_other_seed_other_noise() -> None:
    first = _jsonl(_sim("gas-area-co-release", duration="20m"))
    again = _jsonl(_sim("gas-area-co-release", duration="20m"))
    other = _jsonl(_sim("gas-area-co-release", duration="20m", seed=12))
    assert first == again
    assert first != other and len(first.splitlines()) == len(other.splitlines())


def test_readings_follow_the_design_format_in_time_order() -> None:
    sim = _sim("converter-lance-leak", duration="10m")
    lines = [orjson.loads(line) for line in _jsonl(sim).splitlines()]
    known = {t.id: t for t in sim.tags}
    assert {tuple(sorted(r)) for r in lines} == {("gw", "q", "tag", "ts", "v")}
    assert all(known[r["tag"]].gateway == r["gw"] for r in lines)
    ts = [r["ts"] for r in lines]
    assert ts == sorted(ts) and ts[0] >= sim.start_ms
    # Each gateway publishes every tag at its interval: 10 min of the 2 s lance gateway = 300.
    assert sum(1 for r in lines if r["tag"] == "BOF1-LANCE-FI") == 300


def test_encoder_prints_each_tag_at_its_resolution_and_skips_non_finite() -> None:
    enc = ReadingsEncoder(["A", "B"], ["G1", "G2"], [3, 0])
    data = enc.encode(
        np.array([1, 2, 3], dtype=np.int64),
        np.array([0, 1, 0], dtype=np.int32),
        np.array([-12.3456, 123.6, np.nan]),
        np.array([0, 1, 0], dtype=np.int8),
    )
    assert data == (
        b'{"ts":1,"tag":"A","gw":"G1","v":-12.346,"q":0}\n'
        b'{"ts":2,"tag":"B","gw":"G2","v":124,"q":1}\n'
    )


def _reference_lines(
    enc: tuple[list[str], list[str], list[int]],
    ts: np.ndarray,
    tag: np.ndarray,
    value: np.ndarray,
    quality: np.ndarray,
) -> bytes:
    """The readings format one line at a time: the definition the vectorized encoder must match."""
    tags, gateways, decimals = enc
    lines = []
    for t, k, v, q in zip(ts.tolist(), tag.tolist(), value.tolist(), quality.tolist(), strict=True):
        if not np.isfinite(v):
            continue
        d = decimals[k]
        scaled = round(abs(v) * 10.0**d)  # half to even, at the instrument resolution
        whole, frac = divmod(scaled, 10**d)
        number = ("-" if v < 0 and scaled else "") + str(whole) + (f".{frac:0{d}d}" if d else "")
        q = min(max(q, 0), 999)
        lines.append(f'{{"ts":{t},"tag":"{tags[k]}","gw":"{gateways[k]}","v":{number},"q":{q}}}\n')
    return "".join(lines).encode()


_PLAIN = (["T1", "LONGER-TAG-ID-7", "B", "GAS-CO-01"], ["GW-A", "GW-A", "GATEWAY-LONG-B", "G"],
          [0, 1, 3, 4])  # fmt: skip


def _synthetic(n: int = 6000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Readings without a random generator: the same arrays on every numpy version."""
    i = np.arange(n, dtype=np.int64)
    ts = 1_700_000_000_000 + (i // 4) * 1000 + (i % 4) * 7
    value = ((i * 7919) % 2_000_003 - 1_000_000) / 10.0 ** (i % 6)
    value[::97] = -0.0
    value[::89] = -0.00004  # rounds to zero: no minus sign
    value[::83] = 0.0005  # a tie at 3 decimals: to even
    value[::101] = 123456789.0
    value[::113] = np.nan
    value[::127] = -np.inf
    return ts, (i % 4).astype(np.int32), value, ((i * 37) % 128).astype(np.int8)


def test_encoder_bytes_are_pinned_to_the_first_encoder() -> None:
    # The digest was taken from the first (byte-matrix) encoder before the scatter rewrite:
    # a faster encoder must not change one byte of readings.jsonl.
    arrays = _synthetic()
    data = ReadingsEncoder(*_PLAIN).encode(*arrays)
    assert data == _reference_lines(_PLAIN, *arrays)
    assert hashlib.sha256(data).hexdigest() == (
        "01ada3a265b2f22456726f999a330cb15e4a6c8fb5f1eb2b96d0ac8281d415fe"
    )


@pytest.mark.parametrize("name", ["converter-lance-leak", "alarm-flood", "tank-farm-toxic-release"])
def test_simulated_chunks_encode_as_the_line_by_line_format(name: str) -> None:
    sim = _sim(name, duration="30m")
    decimals = [0] * len(sim.tags)
    for channel in sim.channels_by_tag().values():
        decimals[channel.index] = channel.instrument.decimals
    plain = ([t.id for t in sim.tags], [t.gateway for t in sim.tags], decimals)
    encoder = ReadingsEncoder(*plain)
    for chunk in sim.chunks():
        arrays = (chunk.ts_ms, chunk.tag, chunk.value, chunk.quality)
        assert encoder.encode(*arrays) == _reference_lines(plain, *arrays)


def test_encoder_edge_cases_match_the_line_by_line_format() -> None:
    # Stamps of every digit count, qualities out of 0..999, six decimals (no fraction table),
    # and tag texts so different in length that they are written length by length.
    plain = (["X", "A-VERY-LONG-TAG-IDENTIFIER-OF-A-FAR-AWAY-UNIT-00017"], ["G", "GW-1"], [6, 2])
    ts = np.array([0, 1, 9, 10, 999, 10**12 - 1, 10**12, 10**13, 10**13, 2**62], dtype=np.int64)
    tag = np.array([0, 1] * 5, dtype=np.int32)
    value = np.array([-3.0000005, -0.0, 1e-7, -2.5e-7, 0.125, 99.995, -1e6, 5e8, 7.0, -1.5])
    quality = np.array([0, -5, 9, 10, 99, 100, 127, -128, 3, 1], dtype=np.int8)
    encoder = ReadingsEncoder(*plain)
    assert encoder.encode(ts, tag, value, quality) == _reference_lines(
        plain, ts, tag, value, quality
    )
    empty = np.array([np.nan])
    assert encoder.encode(ts[:1], tag[:1], empty, quality[:1]) == b""
    with pytest.raises(ValueError, match="too large"):
        encoder.encode(ts[:1], tag[:1], np.array([1e13]), quality[:1])
    with pytest.raises(ValueError, match="before 1970"):
        encoder.encode(-ts[1:2], tag[:1], value[:1], quality[:1])


def test_faults_stick_spike_drift_drop_and_leave_range() -> None:
    t = np.arange(0, 100, 10.0)
    v = np.linspace(1, 10, 10)
    rng = np.random.default_rng(0)
    stuck, keep, _ = apply_faults([SensorFault("x", "stuck", 35, 75)], t, v, None, (0, 20), rng)
    assert list(stuck[4:8]) == [v[3]] * 4 and stuck[8] == v[8] and keep.all()
    _, keep, _ = apply_faults([SensorFault("x", "dropout", 20, 40)], t, v, None, (0, 20), rng)
    assert keep.tolist() == [True, True, False, False] + [True] * 6
    oor, _, _ = apply_faults([SensorFault("x", "out_of_range", 0, 1e9)], t, v, None, (0, 20), rng)
    assert (oor > 20).all()
    drift = SensorFault("x", "drift", 0, 1e9, rate_per_h=36.0)
    drifted, _, _ = apply_faults([drift], t, v, None, (0, 20), rng)
    assert np.allclose(drifted - v, t / 100.0)
    bad = SensorFault("x", "bad_quality", 50, 1e9)
    _, _, quality = apply_faults([bad], t, v, None, (0, 20), rng)
    assert quality.tolist() == [0] * 5 + [1] * 5


def test_gateway_outage_removes_readings_and_publishes_status() -> None:
    sim = _sim("buncefield-overfill", start="2005-12-11T05:55:00+00:00", duration="10m",
               events=[{"at": "+2m", "gateway": {"id": "GW-TF-A", "for": "3m"}}])  # fmt: skip
    fleet = GatewayFleet(sim, "hw/v1")
    pubs = [p for c in sim.chunks() for p in fleet.publications(c)] + list(fleet.flush())
    states = [(p.kind, p.gateway) for p in pubs if p.kind != "telemetry"]
    assert states == [("offline", "GW-TF-A"), ("online", "GW-TF-A")]
    off = next(p.at_ms for p in pubs if p.kind == "offline")
    on = next(p.at_ms for p in pubs if p.kind == "online")
    gw_a = [p for p in pubs if p.kind == "telemetry" and p.gateway == "GW-TF-A"]
    assert not any(off <= p.at_ms < on for p in gw_a)
    seqs = [p.seq for p in gw_a]
    assert seqs == list(range(1, len(seqs) + 1))  # increasing across the outage


def test_batches_decode_cleanly_and_faulty_ones_are_rejected_by_ingest() -> None:
    delivery = [
        {"at": 0, "delivery": {"gateway": "GW-GAS", "kind": "malformed", "probability": 0.5}},
        {"at": 0, "delivery": {"gateway": "GW-BF", "kind": "duplicate", "probability": 0.5}},
    ]
    sim = _sim("gas-area-co-release", duration="10m", events=delivery)
    fleet = GatewayFleet(sim, "hw/v1")
    decoder = Decoder(GatewayDirectory.from_plant(sim.plant), "hw/v1")
    pubs = [p for c in sim.chunks() for p in fleet.publications(c) if p.kind == "telemetry"]
    faults = {p.fault.split(":")[0] for p in pubs}
    assert {"", "malformed", "duplicate"} <= faults
    for pub in pubs:
        decoded = decoder.decode(pub.topic, pub.payload, pub.at_ms)
        rejections = getattr(decoded, "rejections", ())
        if pub.fault.startswith("malformed") or pub.fault == "duplicate":
            assert rejections, pub.fault
        elif pub.fault == "":
            assert not rejections, (pub.fault, rejections)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_every_malformed_payload_differs_from_a_valid_batch(kind: str) -> None:
    payload = malformed_payload(kind, "GW", 1, 1000, "T")
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return
    assert body.get("v") != 1 or "points" not in body or body["points"][0]["v"] in ("12.3 m", None)


def test_recordings_in_three_formats_read_alike(tmp_path: Path) -> None:
    (tmp_path / "r.jsonl").write_text(
        '{"ts":1000,"tag":"A","v":1.5}\n{"ts":"1970-01-01T08:00:02+08:00","tag":"B","v":2,"q":1}\n'
        "not json\n"
    )
    (tmp_path / "r.csv").write_text("ts,tag,v,q\n1000,A,1.5,\n2000,B,2,1\n2000,C,oops,0\n")
    (tmp_path / "r.lp").write_text(
        "reading_v1,tag=A,unit=x v=1.5 1000\nreading_v1,tag=B v=2,q=1i 2000\nbroken line\n"
    )
    results = {}
    for name in ("r.jsonl", "r.csv", "r.lp"):
        rejected = Rejected()
        results[name] = [
            (r.ts_ms, r.tag, r.v, r.q) for r in read_recording(tmp_path / name, rejected)
        ]
        assert rejected.count == 1
    assert results["r.jsonl"] == results["r.csv"] == results["r.lp"] == [
        (1000, "A", 1.5, 0), (2000, "B", 2.0, 1)]  # fmt: skip
    assert parse_line_protocol("m,tag=A v=3 5000000", "us").ts_ms == 5000


def test_replay_window_batches_and_pacing() -> None:
    from hazardwatch.types import Reading

    readings = [Reading(t, tag, 1.0, 0, "G") for t in (0, 0, 1000, 3000) for tag in ("A",)]
    readings[1] = Reading(0, "B", 2.0, 0, "G")
    selected = list(window(readings, 0, 3000))
    out = list(batches(selected, "hw/v1", lambda r: ("E", r.gw or "_"), seq_start=7))
    assert [(b.at_ms, b.points) for b in out] == [(0, 2), (1000, 1)]
    assert [orjson.loads(b.payload)["seq"] for b in out] == [7, 8]
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = Pacer(10.0, lambda: now[0], sleep)
    for at in (0, 1000, 3000, 3000):
        pacer.wait_until(at)
    assert np.allclose(slept, [0.1, 0.2])  # 1 s and 2 s of recording at 10× speed
