"""Set-points that change at scenario times: steps and linear ramps, evaluated on time arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulators.signals import FloatArray


@dataclass
class Schedule:
    """Piecewise-linear value of one parameter over scenario time (seconds from start)."""

    initial: float
    _knots_t: list[float] = field(default_factory=list)
    _knots_v: list[float] = field(default_factory=list)
    _pulses: list[tuple[float, float, float]] = field(default_factory=list)

    def change(self, at_s: float, value: float, ramp_s: float = 0.0) -> None:
        """From `at_s` move to `value`, linearly over `ramp_s` seconds (0 = a step)."""
        start_value = self.value_at(at_s)
        if self._knots_t and at_s < self._knots_t[-1]:
            raise ValueError("schedule changes must be added in time order")
        self._knots_t += [at_s, at_s + max(ramp_s, 1e-6)]
        self._knots_v += [start_value, value]

    def pulse(self, at_s: float, size: float, decay_s: float) -> None:
        """Add `size` at `at_s`, decaying exponentially with time constant `decay_s` (a slip)."""
        self._pulses.append((at_s, size, max(decay_s, 1e-6)))

    def value_at(self, t_s: float) -> float:
        """The value at one instant."""
        return float(self.values(np.array([t_s]))[0])

    def values(self, t_s: FloatArray) -> FloatArray:
        """The values at every instant of `t_s` (seconds from scenario start)."""
        if not self._knots_t:
            base = np.full(t_s.shape[0], self.initial)
        else:
            base = np.interp(t_s, self._knots_t, self._knots_v, left=self.initial)
        for at_s, size, decay_s in self._pulses:
            age = t_s - at_s
            live = age >= 0
            if live.any():
                base[live] += size * np.exp(-age[live] / decay_s)
        return base


class Controls:
    """All schedules of one unit model, by parameter name, with defaults from the model."""

    def __init__(self, defaults: dict[str, float]) -> None:
        self.defaults = dict(defaults)
        self.schedules = {name: Schedule(value) for name, value in defaults.items()}

    def set_initial(self, name: str, value: float) -> None:
        """Override a parameter's value at time 0; KeyError for an unknown parameter."""
        self._check(name)
        self.schedules[name] = Schedule(value)

    def change(self, name: str, at_s: float, value: float, ramp_s: float = 0.0) -> None:
        """Schedule a change; KeyError for an unknown parameter."""
        self._check(name)
        self.schedules[name].change(at_s, value, ramp_s)

    def pulse(self, name: str, at_s: float, size: float, decay_s: float) -> None:
        """Schedule a decaying pulse; KeyError for an unknown parameter."""
        self._check(name)
        self.schedules[name].pulse(at_s, size, decay_s)

    def __call__(self, name: str, t_s: FloatArray) -> FloatArray:
        """The parameter's values over `t_s`."""
        return self.schedules[name].values(t_s)

    def _check(self, name: str) -> None:
        if name not in self.schedules:
            known = ", ".join(sorted(self.schedules))
            raise KeyError(f"unknown parameter {name!r} (known: {known})")
