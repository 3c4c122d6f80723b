"""Fuzzing with hypothesis: the gateway decoder, the plant/policy loader and the alerts HTTP API.

    python -m tests.security.fuzz --inputs 1000000 [--targets decoder,loader,api] [--seed N]

prints one JSON document: per target the inputs tried, the crashes found (with the first few
inputs that crashed) and the verdicts seen. What counts as a crash:

- decoder: any exception out of `Decoder.decode`, a `decoder_error` rejection (the decoder's own
  safety net caught a bug) or a verdict that does not add up (tests/unit/test_ingest_fuzz.py);
- loader: anything but a `ConfigFileError` whose every issue names this file, a line inside it
  and, below the document root, a field;
- api: any 5xx answer or a dropped connection from the real aiohttp server on a local port.

Each hypothesis example is one drawn input plus byte-level and JSON-aware mutants of it (49 for
the decoder, 3 for the API), reproducible from a drawn seed: hypothesis' own overhead (some ms per
example) would otherwise make a million inputs take hours. The budget is split 80 / 5 / 15 %
(decoder / loader / API) by default: a plant file takes tens of milliseconds to load, a decoder
message some microseconds. Hypothesis runs in chunks of `--chunk` examples so its memory stays flat;
each chunk draws fresh random data (`--seed` makes a run repeatable). `tests/security/test_fuzz.py`
runs the same targets with a small budget in the normal test run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import logging
import os
import random
import re
import string
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import orjson
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = {"decoder": 0.8, "loader": 0.05, "api": 0.15}
DECODER_MUTANTS = 49  # inputs per hypothesis example: the drawn one and 49 mutants
API_MUTANTS = 3


@dataclass
class Tally:
    """Inputs, crashes and verdicts of one target."""

    inputs: int = 0
    crashes: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, str]] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def crash(self, what: str, data: object, detail: str) -> None:
        self.crashes += 1
        self.kinds[what] += 1
        if len(self.samples) < 5:
            self.samples.append({"what": what, "input": repr(data)[:600], "detail": detail[-1500:]})

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "crashes": self.crashes,
            "inputs_per_s": round(self.inputs / self.seconds) if self.seconds else None,
            "seconds": round(self.seconds, 1),
            "verdicts": dict(self.verdicts.most_common()),
            "crash_kinds": dict(self.kinds.most_common()),
            "crash_samples": self.samples,
        }


class CrashError(AssertionError):
    """Raised in strict mode (pytest) so hypothesis shrinks and reports the crashing input."""


SEED: list[int | None] = [None]  # --seed: chunk i runs with hypothesis seed SEED + i


def run_chunks(
    body: Callable[..., None],
    strategies: dict[str, Any],
    budget: int,
    tally: Tally,
    chunk: int,
    per_example: int = 1,
) -> None:
    """Run `body` under hypothesis (fresh randomness per chunk) until `budget` inputs were tried."""
    start = time.perf_counter()
    chunks = 0
    while tally.inputs < budget:
        before = tally.inputs
        run = settings(
            max_examples=max(1, min(chunk, (budget - tally.inputs) // per_example)),
            deadline=None,
            database=None,
            phases=[Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )(given(**strategies)(body))
        if SEED[0] is not None:
            run = seed(SEED[0] + chunks)(run)
        chunks += 1
        run()
        if tally.inputs == before:  # the strategy's space is exhausted
            break
    tally.seconds += time.perf_counter() - start


_TOKENS = (
    b"null",
    b"true",
    b"-0",
    b"1e999",
    b"-1e999",
    b"NaN",
    b"Infinity",
    b"1.5e-324",
    b"18446744073709551616",
    b"-9223372036854775809",
    b'""',
    b"[]",
    b"{}",
    b'"\\ud800"',
    b'"T1"',
    b'"U1"',
    b'"G1"',
    b'"H1"',
    b'"2024-05-01T08:00:00+08:00"',
    b"\xff",
    b"\x00",
)


def mutants(data: bytes, seed_value: int, count: int) -> Iterator[bytes]:
    """`count` byte-level mutants of `data` (libFuzzer-style edits), reproducible from the seed.

    Hypothesis draws `data` and the seed, so a crash found in a mutant still shrinks; the mutants
    multiply the inputs per hypothesis example, whose own overhead (some ms) would otherwise
    dominate a million-input run.
    """
    rng = random.Random(seed_value)
    for _ in range(count):
        out = bytearray(data)
        for _edit in range(rng.randint(1, 4)):
            at = rng.randint(0, len(out))
            action = rng.randrange(7)
            if action == 0 and out:  # flip bits of one byte
                out[min(at, len(out) - 1)] ^= 1 << rng.randrange(8)
            elif action == 1:  # insert a random byte
                out[at:at] = bytes([rng.randrange(256)])
            elif action == 2 and out:  # delete a run
                del out[at : at + rng.randint(1, 8)]
            elif action == 3 and out:  # duplicate a run
                start = rng.randrange(len(out))
                out[at:at] = out[start : start + rng.randint(1, 32)]
            elif action == 4:  # splice in a token that upsets JSON decoders
                out[at:at] = rng.choice(_TOKENS)
            elif action == 5 and out:  # replace a digit run by an extreme number
                digits = [i for i, b in enumerate(out) if 48 <= b <= 57]
                if digits:
                    i = rng.choice(digits)
                    j = i
                    while j < len(out) and 48 <= out[j] <= 57:
                        j += 1
                    out[i:j] = rng.choice(_TOKENS[2:10])
            else:  # truncate
                del out[at:]
        yield bytes(out)


_JSON_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    -0.0,
    0.1,
    1e308,
    -1e308,
    2**63,
    2**64,
    -(2**63) - 1,
    "",
    "T1",
    "T2",
    "T3",
    "U1",
    "G1",
    "H1",
    "1714550400000",
    "2024-05-01T08:00:00+08:00",
    "2024-05-01T08:00",
    1_714_550_400_000,
    1_714_550_400_000 + 10**9,
    10**20,
    [],
    {},
    [1, 2],
    {"tag": "T1"},
    "x" * 300,
)


def json_mutants(data: bytes, seed_value: int, count: int) -> Iterator[bytes]:
    """Mutants that stay valid JSON when `data` is: one or two values swapped for awkward ones,
    list items dropped or repeated; byte-level mutants otherwise (and for every other one)."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        document = None
    if not isinstance(document, dict | list):
        yield from mutants(data, seed_value, count)
        return
    rng = random.Random(seed_value ^ 0x5EED)
    raw = mutants(data, seed_value, count)
    for i in range(count):
        if i % 2:
            yield next(raw)
            continue
        copy = json.loads(json.dumps(document))
        for _edit in range(rng.randint(1, 2)):
            nodes = [(path, node) for path, node in _walk(copy) if path]
            if not nodes:
                break
            path, node = rng.choice(nodes)
            if isinstance(node, list) and node and rng.random() < 0.3:
                node.append(json.loads(json.dumps(node[0]))) if rng.random() < 0.5 else node.pop()
            else:
                copy = _set(copy, path, json.loads(json.dumps(rng.choice(_JSON_VALUES))))
        yield json.dumps(copy).encode()


def weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Choose among strategies with integer weights (st.one_of picks evenly)."""
    table = [strategy for weight, strategy in options for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


def _dumps(value: Any) -> bytes:
    """JSON bytes; the standard library for integers beyond 64 bits, which orjson refuses."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


def _fail(strict: bool, tally: Tally, what: str, data: object, detail: str) -> None:
    tally.crash(what, data, detail)
    if strict:
        raise CrashError(f"{what}: {detail[-800:]}")


# -- decoder ------------------------------------------------------------------------------------


def decoder_target(budget: int, tally: Tally, strict: bool, chunk: int) -> None:
    """Random bytes, structured mutations of valid messages (both forms), random topics."""
    from ingest.decoder import Decoder
    from ingest.protocol import encode_batch, encode_compact, telemetry_topic
    from tests.unit.ingest_plants import NOW_MS, PREFIX, directory
    from tests.unit.test_ingest_fuzz import G1, check_verdict, json_values, mutated

    catalogue = directory()
    other_topics = st.sampled_from(
        [
            telemetry_topic(PREFIX, "E2", "H1"),
            telemetry_topic(PREFIX, "E1", "H1"),
            f"{PREFIX}/E1/G1/status",
            f"{PREFIX}/E1/G1",
            f"{PREFIX}//G1/telemetry",
        ]
    )

    @st.composite
    def topics(draw: st.DrawFn) -> str:
        """Mostly G1's telemetry topic, so most inputs get past the topic to the payload."""
        roll = draw(st.integers(0, 9))
        if roll < 7:
            return G1
        if roll < 9:
            return draw(other_topics)
        return f"{PREFIX}/{draw(st.text(max_size=40))}"

    @st.composite
    def compact(draw: st.DrawFn) -> bytes:
        points = [("T1", NOW_MS, 1.0, 0), ("T2", NOW_MS - 5, 2.0, 192)]
        message: dict[str, Any] = orjson.loads(encode_compact("G1", 7, NOW_MS, points))
        for _ in range(draw(st.integers(1, 4))):
            key = draw(st.sampled_from(["v", "gw", "seq", "sent", "tags", "ts", "vals", "q", "x"]))
            if draw(st.booleans()):
                message.pop(key, None)
            else:
                message[key] = draw(json_values)
        return json.dumps(message).encode()

    def object_form(message: dict[str, Any]) -> bytes:
        return json.dumps(message).encode()

    point = st.tuples(
        st.sampled_from(["T1", "T2", "T3", "U1", "X9"]),
        st.integers(NOW_MS - 8 * 86_400_000, NOW_MS + 600_000),
        st.floats(width=32),
        st.sampled_from([0, 0, 0, 64, 192, 256, -1]),
    )
    well_formed = st.builds(
        lambda encode, seq, points: encode("G1", seq, NOW_MS, points),
        st.sampled_from([encode_batch, encode_compact]),
        st.integers(0, 2**63),
        st.lists(point, max_size=8),
    )
    payloads = st.one_of(
        well_formed,
        well_formed,
        st.binary(max_size=400),
        mutated().map(object_form),
        compact(),
        json_values.map(lambda v: json.dumps(v).encode()),
    )

    def fuzz(topic: str, payload: bytes, seed_value: int) -> None:
        # a quarter of the mutants share one decoder's sequence state, as a gateway's messages
        # do; the rest get a fresh one, so their points are judged rather than deduplicated
        shared = Decoder(catalogue, PREFIX)
        inputs = (payload, *json_mutants(payload, seed_value, DECODER_MUTANTS))
        for i, data in enumerate(inputs):
            decoder = shared if i % 4 == 0 else Decoder(catalogue, PREFIX)
            tally.inputs += 1
            try:
                result = decoder.decode(topic, data, NOW_MS)
                check_verdict(result)
            except Exception as exc:
                _fail(strict, tally, type(exc).__name__, (topic, data), traceback.format_exc())
                continue
            first = result.rejections[0].reason.value if result.rejections else "accepted"
            tally.verdicts[first] += 1

    strategies = {"topic": topics(), "payload": payloads, "seed_value": st.integers(0, 2**32)}
    run_chunks(fuzz, strategies, budget, tally, chunk, per_example=1 + DECODER_MUTANTS)


# -- plant and policy loader ----------------------------------------------------------------------


def _seed_documents() -> dict[str, list[tuple[str, str]]]:
    """Valid files to mutate: (kind, text) — the example plants, the security plant, policies."""
    from tests.security.plant import PLANT_YAML, policy_yaml

    plants = [
        p.read_text("utf-8")
        for p in sorted((ROOT / "examples").glob("*.yaml"))
        if p.name != "policy.yaml"
    ] + [PLANT_YAML]
    policies = [
        (ROOT / "examples/policy.yaml").read_text("utf-8"),
        policy_yaml("http://127.0.0.1:9"),
    ]
    return {"plant": [("plant", t) for t in plants], "policy": [("policy", t) for t in policies]}


def _walk(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, data
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk(value, (*path, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _walk(value, (*path, i))


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return data


def _delete(data: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return None
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return data


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**66), 2**66),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            "nan",
            "-1",
            "0",
            "1e309",
            "QZ-PETRO",
            "GW-TF-A",
            "T101-LT",
            "level",
            "tank_farm",
            "350521",
            "red",
            "S2",
            "county",
            "~",
            "yes",
            "2024-05-01",
        ]
    ),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def structural(draw: st.DrawFn, kind: str, text: str) -> str:
    """Parse, change 1–4 nodes (replace, delete, duplicate, retype), dump back to YAML."""
    data = yaml.safe_load(text)
    for _ in range(draw(st.integers(1, 4))):
        nodes = list(_walk(data))
        path, node = nodes[draw(st.integers(0, len(nodes) - 1))]
        action = draw(st.sampled_from(["replace", "delete", "duplicate", "retype", "swap"]))
        if action == "replace" or not path:
            data = _set(data, path, draw(yaml_values))
        elif action == "delete":
            data = _delete(data, path)
        elif action == "duplicate" and isinstance(node, dict | list):
            data = _set(data, path, yaml.safe_load(yaml.safe_dump(node)))
            parent_path, parent = path[:-1], data
            for part in parent_path:
                parent = parent[part]
            if isinstance(parent, list):
                parent.append(yaml.safe_load(yaml.safe_dump(node)))  # a duplicate id
        elif action == "retype":
            data = _set(data, path, [node] if not isinstance(node, list) else {"x": node})
        else:  # swap with another node's value: right shape, wrong place
            _other_path, other = nodes[draw(st.integers(0, len(nodes) - 1))]
            data = _set(data, path, yaml.safe_load(yaml.safe_dump(other)))
        if data is None:
            break
    try:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    except yaml.YAMLError:
        return text


@st.composite
def textual(draw: st.DrawFn, text: str, control_characters: bool = True) -> str:
    """Line and character edits of the YAML text: the mistakes people make by hand."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            lines = [""]
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(
            st.sampled_from(["drop", "dup", "indent", "dedent", "insert", "cut", "tab", "char"])
        )
        if action == "drop":
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        elif action == "indent":
            lines[i] = "  " + lines[i]
        elif action == "dedent":
            lines[i] = lines[i][2:]
        elif action == "insert":
            lines.insert(i, draw(st.text(max_size=30)))
        elif action == "cut":
            lines = lines[:i]
        elif action == "tab":
            lines[i] = "\t" + lines[i]
        else:
            line = lines[i]
            at = draw(st.integers(0, len(line)))
            junk = draw(st.text(alphabet=string.printable + "：，｛｝「」—é\x00\ufeff", max_size=3))
            lines[i] = line[:at] + junk + line[at + draw(st.integers(0, 2)) :]
    out = "\n".join(lines) + "\n"
    return out if control_characters else yaml.reader.Reader.NON_PRINTABLE.sub("", out)


def loader_target(
    budget: int, tally: Tally, strict: bool, chunk: int, control_characters: bool = True
) -> None:
    """Mutated plant and policy files through load_plant, load_policy and load_routing.

    `control_characters=False` keeps the characters YAML forbids out of the text edits (the
    pytest run, while tests/security/test_fuzz.py's xfail records the loader's crash on them).
    """
    from alerting.policy import load_routing
    from hazardwatch.plant.loader import ConfigFileError, load_plant, load_policy

    seeds = _seed_documents()
    documents = st.one_of(
        *[structural("plant", text) for _k, text in seeds["plant"]],
        *[textual(text, control_characters) for _k, text in seeds["plant"]],
    ).map(lambda t: ("plant", t)) | st.one_of(
        *[structural("policy", text) for _k, text in seeds["policy"]],
        *[textual(text, control_characters) for _k, text in seeds["policy"]],
    ).map(lambda t: ("policy", t))
    folder = Path(tempfile.mkdtemp(prefix="hw-fuzz-"))
    loaders = {"plant": [load_plant], "policy": [load_policy, load_routing]}

    def fuzz(document: tuple[str, str]) -> None:
        kind, text = document
        path = folder / f"{kind}.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        n_lines = len(_YAML_LINE_BREAK.split(text))
        for load in loaders[kind]:
            tally.inputs += 1
            try:
                load(path)
            except ConfigFileError as exc:
                problem = _issue_problem(exc, str(path), n_lines, text)
                if problem:
                    _fail(strict, tally, f"{load.__name__}: {problem}", text, str(exc))
                else:
                    tally.verdicts[f"{kind} refused"] += 1
            except Exception as exc:
                _fail(
                    strict,
                    tally,
                    f"{load.__name__}: {type(exc).__name__}",
                    text,
                    traceback.format_exc(),
                )
            else:
                tally.verdicts[f"{kind} loaded"] += 1

    try:
        run_chunks(fuzz, {"document": documents}, budget, tally, chunk)
    finally:
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()


# Line breaks as PyYAML counts them (and Python's text mode reads a lone \r as one, too): a
# mutation that inserts \u2028 gives the file more lines than its \n alone say.
_YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")

_ROOT_MESSAGES = (
    "YAML syntax",
    "file is empty",
    "cannot read",
    "Input should be a valid dict",
    "should be a valid dictionary",
)


def _blank_keys(text: str) -> bool:
    """True if some mapping key is empty or null: its field name is legitimately blank."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False
    return any(
        isinstance(node, dict) and any(key in ("", None) for key in node)
        for _path, node in _walk(data)
    )


def _issue_problem(exc: Any, file: str, n_lines: int, text: str) -> str:
    """Why a ConfigFileError is not a proper `file:line:field` report ('' when it is)."""
    if not exc.issues:
        return "no issues listed"
    for issue in exc.issues:
        if issue.file != file:
            return f"issue names another file: {issue.file}"
        if not 1 <= issue.line <= n_lines:
            return f"line {issue.line} outside the file (1..{n_lines})"
        if not issue.message:
            return "issue without a message"
        root_level = issue.message.startswith(_ROOT_MESSAGES) or _blank_keys(text)
        if not issue.field and not root_level:
            return f"issue without a field: {issue.message[:80]}"
    return ""


# -- alerts API -----------------------------------------------------------------------------------


class ApiServer:
    """The real aiohttp alerts app on a local port, in a thread with its own event loop."""

    TOKENS: ClassVar[dict[str, tuple[str, str, str]]] = {
        "tok-huian": ("li", "county", "350521"),
        "tok-jinjiang": ("lin", "county", "350582"),
        "tok-sec-a": ("wang", "enterprise", "SEC-A"),
        "tok-quanzhou": ("chen", "city", "350500"),
    }

    def __init__(self, folder: Path) -> None:
        from aiohttp import web

        from alerting.api import make_app
        from alerting.auth import TokenEntry, TokenStore, token_hash
        from alerting.commands import CommandQueue
        from alerting.outbox import Outbox
        from alerting.policy import load_routing
        from alerting.service import AlertService, areas_from_plant
        from tests.security.plant import security_plant, write_policy

        plant = security_plant(folder)
        policy = load_routing(write_policy(folder, "http://127.0.0.1:9"))
        self.service = AlertService(
            policy,
            Outbox(folder / "outbox.db"),
            areas_from_plant(plant),
            lambda: int(time.time() * 1000),
            commands=CommandQueue(),
        )
        self.seed_alerts()
        tokens = TokenStore(
            tuple(
                TokenEntry(user=u, tier=t, area=a, sha256=token_hash(k))  # type: ignore[arg-type]
                for k, (u, t, a) in self.TOKENS.items()
            )
        )
        self.app = make_app(self.service, tokens)
        self.web = web
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        if not self.ready.wait(30):
            raise RuntimeError("alerts API did not start")

    def seed_alerts(self) -> None:
        """Open alerts in both counties, so scoped requests reach the handlers' body checks."""
        now = int(time.time() * 1000)
        for n in range(3):
            for enterprise in ("SEC-A", "SEC-B"):
                self.service.handle(
                    {
                        "id": f"{enterprise}-{now}-{n}",
                        "ts": now,
                        "type": "risk",
                        "enterprise": enterprise,
                        "source": f"{enterprise}-TF1",
                        "colour": "orange",
                        "previous": "blue",
                    }
                )

    def alert_ids(self) -> list[str]:
        return sorted(self.service.book.alerts)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = self.web.AppRunner(self.app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        site = self.web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self.runner = runner
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.service.outbox.close()


_TEMPLATES = [
    "/api/v1/alerts",
    "/api/v1/alerts/{id}",
    "/api/v1/alerts/{id}/ack",
    "/api/v1/alerts/{id}/feedback",
    "/api/v1/alerts/{id}/clear",
    "/api/v1/alerts/{id}/shelve",
    "/healthz",
    "/api/v1/openapi.json",
    "/{junk}",
    "/api/v1/alerts/{id}/{junk}",
    "/api/v1/{junk}",
]
_PATH_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/%?#[]"


def api_target(budget: int, tally: Tally, strict: bool, chunk: int) -> None:
    """Random methods, paths, query strings, headers and bodies against the running API."""
    from tests.unit.test_ingest_fuzz import json_values

    # aiohttp answers a malformed request line with 400 and logs it with a traceback at ERROR;
    # that is its parser at work, not a crash, and a million of them would drown the report
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    folder = Path(tempfile.mkdtemp(prefix="hw-fuzz-api-"))
    server = ApiServer(folder)
    ids = server.alert_ids()
    # weighted towards requests that pass routing and authentication, so that most inputs reach
    # the handlers' own checks; the rest probe routing, parsing and authentication themselves
    segment = weighted(
        (8, st.sampled_from(ids)),
        (1, st.sampled_from(["A-nope", "..", "%2e%2e", "A-%00", "%E6%B5%8B", "", "A-" + "9" * 99])),
        (1, st.text(max_size=30).map(lambda s: quote(s, safe=""))),
        (1, st.text(alphabet=_PATH_CHARS, max_size=30)),
    )
    methods = weighted(
        (6, st.just("POST")),
        (3, st.just("GET")),
        (1, st.sampled_from(["PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "FOO"])),
    )
    from alerting.openapi import ROUTES

    routes = weighted(
        (8, st.sampled_from([(r.method, r.path) for r in ROUTES])),
        (2, st.tuples(methods, st.sampled_from(_TEMPLATES))),
    )
    query = weighted(
        (7, st.just("")),
        (1, st.lists(st.tuples(st.text(max_size=10), st.text(max_size=20)), max_size=4).map(
            lambda kv: "?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in kv))),
        (1, st.text(alphabet=_PATH_CHARS, max_size=40).map(lambda s: "?" + s)),
    )  # fmt: skip
    auth = weighted(
        (8, st.sampled_from([f"Bearer {t}" for t in ApiServer.TOKENS])),
        (
            1,
            st.sampled_from(["", "Bearer ", "Bearer tok-x", "Basic tok-huian", "bearer tok-huian"]),
        ),
        (1, st.text(alphabet=string.printable.strip() + " ", max_size=60)),
    )
    numbers = st.one_of(st.floats(), st.integers(-(2**63), 2**63 - 1))
    bodies = weighted(
        (2, st.fixed_dictionaries({"cause": st.text(max_size=40), "measures": st.text(max_size=40)})
         .map(_dumps)),
        (2, st.fixed_dictionaries({"duration_s": numbers},
                                  optional={"reason": json_values}).map(_dumps)),
        (2, st.fixed_dictionaries({}, optional={k: json_values for k in
                                                ("cause", "measures", "duration_s", "reason")})
         .map(_dumps)),
        (1, json_values.map(_dumps)),
        (1, st.binary(max_size=200)),
        (1, st.just(b"")),
        (1, st.sampled_from([b"[" * 2000, b'{"a":' * 2000, b'"\\ud800"', b"\xef\xbb\xbf{}"])),
    )  # fmt: skip
    content_types = st.sampled_from(
        [
            "application/json",
            "text/plain",
            "",
            "application/json; charset=latin-1",
            "multipart/form-data; boundary=x",
        ]
    )
    connection: list[http.client.HTTPConnection] = []

    def send(method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        if not connection:
            connection.append(http.client.HTTPConnection("127.0.0.1", server.port, timeout=10))
        conn = connection[0]
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                connection.clear()
            return response.status
        except BaseException:
            conn.close()
            connection.clear()
            raise

    def fuzz(
        route: tuple[str, str],
        alert: str,
        junk: str,
        query: str,
        auth: str,
        body: bytes,
        content_type: str,
        seed_value: int,
    ) -> None:
        method, template = route
        path = template.replace("{id}", alert).replace("{junk}", junk) + query
        headers = {"Authorization": auth} if auth else {}
        if content_type:
            headers["Content-Type"] = content_type
        bodies = (body, *json_mutants(body, seed_value, API_MUTANTS))
        # mutated paths keep their leading slash: without it aiohttp's parser answers 400 before
        # any of our code runs
        mutated = mutants(path.encode(), seed_value, API_MUTANTS)
        paths = (path, *("/" + p.decode("latin-1").lstrip("/") for p in mutated))
        # the drawn request, then mutants changing either the body or the path, not both
        for i, (variant_path, variant_body) in enumerate(zip(paths, bodies, strict=True)):
            if i % 2:
                one_request(method, path, headers, variant_body)
            else:
                one_request(method, variant_path, headers, body)

    def one_request(method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        request = (method, path, headers, body)
        # http.client refuses non-ASCII, control characters and spaces in the request line
        if not path.isascii() or any(ord(c) <= 32 or ord(c) == 127 for c in path):
            return
        tally.inputs += 1
        try:
            status = send(method, path, headers, body)
        except (http.client.HTTPException, OSError) as exc:
            _fail(strict, tally, f"connection: {type(exc).__name__}", request, str(exc))
            return
        if status >= 500:
            _fail(strict, tally, f"HTTP {status}", request, f"{method} {path} → {status}")
        else:
            tally.verdicts[str(status)] += 1
        if tally.inputs % 5000 == 0:
            server.seed_alerts()  # acks and clears close alerts; keep some open

    strategies = {
        "route": routes,
        "alert": segment,
        "junk": segment,
        "query": query,
        "auth": auth,
        "body": bodies,
        "content_type": content_types,
        "seed_value": st.integers(0, 2**32),
    }
    try:
        run_chunks(fuzz, strategies, budget, tally, chunk, per_example=1 + API_MUTANTS)
    finally:
        for conn in connection:
            conn.close()
        server.close()
        for leftover in folder.iterdir():
            leftover.unlink()
        folder.rmdir()


TARGETS: dict[str, Callable[..., None]] = {
    "decoder": decoder_target,
    "loader": loader_target,
    "api": api_target,
}


def run(
    inputs: int,
    targets: list[str],
    strict: bool = False,
    chunk: int = 5000,
    seed_value: int | None = None,
    control_characters: bool = True,
) -> dict[str, Any]:
    """Fuzz `targets` with `inputs` in total (split by WEIGHTS); the JSON report."""
    SEED[0] = seed_value
    weights = {t: WEIGHTS[t] for t in targets}
    scale = sum(weights.values())
    report: dict[str, Any] = {"targets": {}}
    started = time.perf_counter()
    for target in targets:
        budget = max(1, round(inputs * weights[target] / scale))
        tally = Tally()
        options = {"control_characters": control_characters} if target == "loader" else {}
        TARGETS[target](budget, tally, strict, chunk, **options)
        report["targets"][target] = tally.to_json()
    tallies = report["targets"].values()
    report["total"] = {
        "inputs": sum(t["inputs"] for t in tallies),
        "crashes": sum(t["crashes"] for t in tallies),
        "seconds": round(time.perf_counter() - started, 1),
    }
    report["machine"] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    return report


def main(argv: list[str] | None = None) -> int:
    """Command line: prints the JSON report; exit 1 when anything crashed."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.security.fuzz",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--inputs", type=int, default=10_000, help="total inputs (all targets)")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated")
    parser.add_argument("--chunk", type=int, default=5000, help="hypothesis examples per run")
    parser.add_argument("--seed", type=int)
    parser.add_argument(
        "--no-control-characters",
        action="store_true",
        help="keep characters YAML forbids out of the loader's text edits",
    )
    args = parser.parse_args(argv)
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; known: {', '.join(TARGETS)}")
    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the one JSON document
        report = run(
            args.inputs,
            targets,
            chunk=args.chunk,
            seed_value=args.seed,
            control_characters=not args.no_control_characters,
        )
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 1 if report["total"]["crashes"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
