"""The plant model: enterprise → hazard source → unit (equipment) → tag, plus gateways and rules.

Every model is a frozen pydantic v2 model that forbids unknown keys. Build a plant with
`hazardwatch.plant.load_plant(path)` (errors carry file, line and field) or
`Plant.model_validate(data)` (cross-reference errors are raised as one ValueError).

For the engine, two calls turn the tree into flat, concrete records (see `resolve.py`):

- `plant.resolved_tags() -> tuple[ResolvedTag, ...]` — one record per tag in file order, every
  number concrete: range, `limits` (tuple of `LimitSpec(key, value, high, severity, condition)`,
  high alarms when v > value, low when v < value), absolute `deadband` (engineering unit),
  `on_delay_s`, `off_delay_s`, `expected_interval_s` (tag or its gateway), `frozen_after_s`
  (None = off) and absolute `frozen_band`, plus `order10`, `independent_of`, `occupied_area` and
  the owning enterprise / source / unit / gateway ids.
- `plant.resolved_rules() -> tuple[PlacedRule, ...]` — the derived-condition rules
  (rate_of_change, flatline_while_filling, flow_difference, baseline_deviation) with the ids of
  the enterprise, source and unit they belong to. `frozen_value` rules are folded into
  `ResolvedTag.frozen_after_s` / `frozen_band` instead, so the engine reads them in one place.

Defaults resolve tag > unit `defaults:` > hazard source `defaults:` > plant `defaults:` >
`BUILTIN_DEFAULTS` (DOMAIN.md §3), per quantity and per field.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hazardwatch.errors import ConfigError
from hazardwatch.plant import grade as gb18218
from hazardwatch.plant.defaults import Quantity, QuantityDefaults, SpanValue
from hazardwatch.plant.rules import Rule
from hazardwatch.region import city_of, province_of, validate_region

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
"""Ids travel in MQTT topics, InfluxDB tags and Kafka keys: ASCII, no spaces or slashes."""

PositiveSeconds = Annotated[float, Field(gt=0)]
NonNegativeSeconds = Annotated[float, Field(ge=0)]
Defaults = dict[Quantity, QuantityDefaults]
_T = TypeVar("_T")
_V = TypeVar("_V", tuple[float, float], "Limits")


SHARE_EQUAL = "share_equal"
"""Validation context key: a dict in which one validation keeps the equal immutable parts of its
models (limit sets, ranges, sets of given fields) so that they are stored once. A generated plant
repeats a handful of them over 100,000 tags: shared, they take ~1.4 kB less per tag."""


def _shared(value: _T, key: object, context: object) -> _T:
    store = context.get(SHARE_EQUAL) if isinstance(context, dict) else None
    if store is None:
        return value
    return store.setdefault(key, value)  # type: ignore[no-any-return]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_post_init(self, context: Any, /) -> None:
        """Share the set of given fields with equal models of this validation (SHARE_EQUAL)."""
        # pydantic never changes a frozen model's set in place (model_copy copies it first),
        # and model_construct assigns it the same way.
        given = self.__pydantic_fields_set__
        key = (_Frozen, type(self), frozenset(given))
        object.__setattr__(self, "__pydantic_fields_set__", _shared(given, key, context))


class Industry(StrEnum):
    """Sector of an enterprise; decides which regulations (e.g. MEM Order 10) apply."""

    HAZARDOUS_CHEMICALS = "hazardous_chemicals"
    METALLURGY = "metallurgy"
    TANK_FARM = "tank_farm"
    NONFERROUS = "nonferrous"
    MINING = "mining"
    FIREWORKS = "fireworks"
    OTHER = "other"


class SourceKind(StrEnum):
    """Kind of hazard source / risk unit."""

    TANK_FARM = "tank_farm"
    PROCESS_UNIT = "process_unit"
    WAREHOUSE = "warehouse"
    CONVERTER = "converter"
    ELECTRIC_ARC_FURNACE = "electric_arc_furnace"
    BLAST_FURNACE = "blast_furnace"
    GAS_HOLDER = "gas_holder"
    LADLE_CRANE = "ladle_crane"
    GAS_AREA = "gas_area"
    OTHER = "other"


def _region(code: str) -> str:
    try:
        return validate_region(code)
    except ConfigError as exc:  # pydantic reports ValueError with its location
        raise ValueError(str(exc)) from exc


class Enterprise(_Frozen):
    """A production and business unit (生产经营单位) in a county-level region."""

    id: Identifier
    name: str = Field(min_length=1)
    region: Annotated[str, AfterValidator(_region)]
    industry: Industry

    @property
    def city(self) -> str:
        """City (prefecture) code of the enterprise's region, e.g. `410100`."""
        return city_of(self.region)

    @property
    def province(self) -> str:
        """Province code of the enterprise's region, e.g. `410000`."""
        return province_of(self.region)


class Gateway(_Frozen):
    """An IoT gateway publishing the listed tags every `interval_s` seconds."""

    id: Identifier
    enterprise: str
    interval_s: PositiveSeconds
    tags: tuple[str, ...] = Field(min_length=1)


class Limits(_Frozen):
    """Alarm limits in the tag's unit; gases may say `level1`/`level2` instead of `H`/`HH`."""

    LL: float | None = None
    L: float | None = None
    H: float | None = None
    HH: float | None = None
    level1: float | None = None
    level2: float | None = None

    def present(self) -> list[tuple[str, str, float]]:
        """`(field name, canonical key LL/L/H/HH, value)` of every given limit, low to high."""
        out: list[tuple[str, str, float]] = []
        for field, key in (("LL", "LL"), ("L", "L"), ("H", "H"), ("level1", "H"),
                           ("HH", "HH"), ("level2", "HH")):  # fmt: skip
            value = getattr(self, field)
            if value is not None:
                out.append((field, key, float(value)))
        return out


class Tag(_Frozen):
    """A monitoring point; `unit` is its engineering unit (m, °C, kPa, m³/h, %LEL, ppm …)."""

    id: Identifier
    name: str = ""
    quantity: Quantity
    unit: str = Field(min_length=1)
    range: tuple[float, float]
    limits: Limits = Limits()
    severity: dict[Literal["LL", "L", "H", "HH"], Literal[1, 2]] | None = None
    deadband: SpanValue | None = None
    on_delay_s: NonNegativeSeconds | None = None
    off_delay_s: NonNegativeSeconds | None = None
    expected_interval_s: PositiveSeconds | None = None
    order10: bool = False
    independent_of: str | None = None
    frozen_after_s: PositiveSeconds | None = None
    frozen_band: SpanValue | None = None

    @field_validator("range", "limits", mode="after")
    @classmethod
    def _share_equal(cls, value: _V, info: ValidationInfo) -> _V:
        # Immutable (a float pair, a frozen model): equal ones may be one object (SHARE_EQUAL).
        if isinstance(value, Limits):
            key: object = (Limits, *value.__dict__.values(), frozenset(value.model_fields_set))
        else:
            key = (tuple, *value)
        return _shared(value, key, info.context)

    @property
    def span(self) -> float:
        """Instrument span, range max − range min, in the tag's unit."""
        return self.range[1] - self.range[0]


class Unit(_Frozen):
    """A piece of equipment (tank, reactor, lance, stave row, crane) carrying tags and rules."""

    id: Identifier
    name: str = ""
    occupied_area: bool = False  # people work here: CO level 2 becomes S3 (DOMAIN.md §5)
    volume_m3: Annotated[float, Field(gt=0)] | None = None
    defaults: Defaults = Field(default_factory=dict)
    tags: tuple[Tag, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = ()


class Substance(_Frozen):
    """One dangerous substance of a hazard source's inventory (GB 18218-2018)."""

    name: str = Field(min_length=1)
    q: Annotated[float, Field(ge=0)]  # actual maximum quantity present, t
    Q: Annotated[float, Field(gt=0)]  # critical quantity from GB 18218 Table 1/2, t
    category: gb18218.SubstanceCategory = gb18218.SubstanceCategory.OTHER
    beta: Annotated[float, Field(gt=0)] | None = None  # explicit β wins over the category

    @property
    def effective_beta(self) -> float:
        """β used in R: the explicit value or the category's."""
        return self.beta if self.beta is not None else gb18218.BETA[self.category]


class HazardSource(_Frozen):
    """A hazard source / risk unit: its grade is given or computed from `inventory`."""

    id: Identifier
    enterprise: str
    name: str = Field(min_length=1)
    kind: SourceKind
    grade: Annotated[int, Field(ge=1, le=4)] | None = None
    inventory: tuple[Substance, ...] = ()
    people_within_500m: Annotated[int, Field(ge=0)] | None = None
    defaults: Defaults = Field(default_factory=dict)
    units: tuple[Unit, ...] = Field(min_length=1)

    def _triples(self) -> list[tuple[float, float, float]]:
        return [(s.effective_beta, s.q, s.Q) for s in self.inventory]

    @property
    def risk_value(self) -> float | None:
        """GB 18218 R of the inventory, or None without inventory or people count."""
        if not self.inventory or self.people_within_500m is None:
            return None
        return gb18218.risk_value(self._triples(), gb18218.alpha_for(self.people_within_500m))

    @property
    def computed_grade(self) -> int | None:
        """Grade 1–4 from the inventory; None if not computable or Σq/Q < 1 (not major)."""
        r = self.risk_value
        if r is None or not gb18218.is_major_hazard(self._triples()):
            return None
        return gb18218.grade_for(r)

    @property
    def resolved_grade(self) -> int | None:
        """The given grade, else the computed one; None = not a major hazard source."""
        return self.grade if self.grade is not None else self.computed_grade

    @property
    def has_order10(self) -> bool:
        """True when any tag is an MEM Order-10 (2023) major-accident-hazard variable."""
        return any(tag.order10 for unit in self.units for tag in unit.tags)

    @property
    def effective_grade(self) -> int:
        """Grade used by the colour matrix: non-major counts as 4, Order-10 sources as ≤ 2."""
        grade = self.resolved_grade or 4
        # Order 10 is the metallurgy major-accident-hazard list; DOMAIN.md §5 ranks such units
        # with grade 1–2 sources so an alarm on them reaches orange/red.
        return min(grade, 2) if self.has_order10 else grade


class Plant(_Frozen):
    """A plant file: enterprises, gateways, hazard sources and plant-wide defaults."""

    version: Literal[1] = 1
    enterprises: tuple[Enterprise, ...] = Field(min_length=1)
    gateways: tuple[Gateway, ...] = Field(min_length=1)
    hazard_sources: tuple[HazardSource, ...] = Field(min_length=1)
    defaults: Defaults = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cross_references(self, info: ValidationInfo) -> Plant:
        # The loader turns off this pass and runs plant_problems itself so that every problem
        # keeps its own location (and so its own file line).
        if info.context and info.context.get("cross_checks") is False:
            return self
        problems = plant_problems(self)
        if problems:
            raise ValueError("; ".join(f"{p.field}: {p.message}" for p in problems))
        return self

    def enterprise(self, enterprise_id: str) -> Enterprise:
        """The enterprise with this id; KeyError if absent."""
        for enterprise in self.enterprises:
            if enterprise.id == enterprise_id:
                return enterprise
        raise KeyError(enterprise_id)

    def hazard_source(self, source_id: str) -> HazardSource:
        """The hazard source with this id; KeyError if absent."""
        for source in self.hazard_sources:
            if source.id == source_id:
                return source
        raise KeyError(source_id)

    def tags(self) -> list[Tag]:
        """Every tag in file order."""
        return [tag for s in self.hazard_sources for u in s.units for tag in u.tags]

    def resolved_tags(self) -> tuple[ResolvedTag, ...]:
        """Every tag with all defaults applied and every number concrete (see module doc);
        resolved once per plant."""
        return self._memo("resolved_tags", resolve_tags)

    def resolved_rules(self) -> tuple[PlacedRule, ...]:
        """Derived-condition rules with their enterprise/source/unit (frozen_value excluded)."""
        return self._memo("resolved_rules", place_rules)

    def _memo(self, name: str, compute: Callable[[Plant], _T]) -> _T:
        # The runner's components each ask for the resolved tags (seconds at 100,000 tags). A
        # plant is immutable, but `model_copy(update=...)` copies `__dict__`, this memo included,
        # into a plant with other fields: so the memo keeps the fields it was computed from.
        # Extra `__dict__` keys are not fields: equality, hash, repr and dumps ignore them.
        fields = (self.hazard_sources, self.gateways, self.defaults)
        memo = self.__dict__.get(f"_memo_{name}")
        if memo is not None and all(a is b for a, b in zip(memo[0], fields, strict=True)):
            return memo[1]  # type: ignore[no-any-return]
        value = compute(self)
        self.__dict__[f"_memo_{name}"] = (fields, value)
        return value


# Imported last: these modules only type-reference the classes above.
from hazardwatch.plant.checks import plant_problems  # noqa: E402
from hazardwatch.plant.resolve import (  # noqa: E402
    PlacedRule,
    ResolvedTag,
    place_rules,
    resolve_tags,
)
