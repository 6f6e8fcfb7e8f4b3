"""The community battery: its parameters, its plan, and the part of the charging LP it adds.

The battery is planned by the same linear programme as the cars (``zhishe.energy.charging``). Per
planned slot it adds three columns: the charging power taken from the grid, the discharging power
given to the grid (both kW, AC side) and the state of charge at the end of the slot (kWh). The
state of charge follows ``soc[t] = soc[t-1] + charge_efficiency * charge[t] * h[t]
- discharge[t] * h[t] / discharge_efficiency``, where ``h[t]`` is the slot's length in hours (the
first slot of a plan may be shorter: it starts at ``now``), and stays between ``min_soc_kwh`` and
``capacity_kwh`` at the end of every slot. As the power is constant within a slot, the state of
charge moves monotonically inside it, so the bounds hold at every instant, not only at slot ends.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from zhishe.core.errors import Invalid

__all__ = ["Battery", "BatteryPlan", "soc_after"]

FloatArray = npt.NDArray[np.float64]

#: The LP keeps the state of charge this far (kWh, relative to the capacity) inside its bounds, so
#: that the solver's feasibility tolerance cannot push the reported trajectory outside them.
_SOC_MARGIN = 1e-7


@dataclass(frozen=True, slots=True)
class Battery:
    """A stationary battery: capacity, power limits, one-way efficiencies and state of charge (kWh).

    ``final_soc_kwh``, when given, is the least state of charge the battery must hold at the end of
    the horizon (so a plan does not empty it for the next day).
    """

    capacity_kwh: float
    max_charge_kw: float
    max_discharge_kw: float
    initial_soc_kwh: float
    min_soc_kwh: float = 0.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    final_soc_kwh: float | None = None

    def __post_init__(self) -> None:
        for name in ("capacity_kwh", "max_charge_kw", "max_discharge_kw", "initial_soc_kwh", "min_soc_kwh"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise Invalid(
                    f"battery: {name} is {value}; it must be a finite number", detail={"field": name}
                )
            if value < 0:
                raise Invalid(f"battery: {name} is {value}; it must be zero or more", detail={"field": name})
        if self.capacity_kwh <= 0:
            raise Invalid("battery: capacity_kwh must be above zero", detail={"field": "capacity_kwh"})
        for name in ("charge_efficiency", "discharge_efficiency"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= 1):
                raise Invalid(f"battery: {name} is {value}; it must be in (0, 1]", detail={"field": name})
        if self.min_soc_kwh > self.capacity_kwh:
            raise Invalid(
                f"battery: min_soc_kwh {self.min_soc_kwh} is above capacity_kwh {self.capacity_kwh}",
                detail={"field": "min_soc_kwh"},
            )
        if not self.min_soc_kwh <= self.initial_soc_kwh <= self.capacity_kwh:
            raise Invalid(
                f"battery: initial_soc_kwh {self.initial_soc_kwh} is outside "
                f"[{self.min_soc_kwh}, {self.capacity_kwh}]",
                detail={"field": "initial_soc_kwh"},
            )
        final = self.final_soc_kwh
        if final is not None and not (
            math.isfinite(final) and self.min_soc_kwh <= final <= self.capacity_kwh
        ):
            raise Invalid(
                f"battery: final_soc_kwh {final} is outside [{self.min_soc_kwh}, {self.capacity_kwh}]",
                detail={"field": "final_soc_kwh"},
            )

    @classmethod
    def with_round_trip(
        cls,
        *,
        capacity_kwh: float,
        max_charge_kw: float,
        max_discharge_kw: float,
        initial_soc_kwh: float,
        round_trip_efficiency: float,
        min_soc_kwh: float = 0.0,
        final_soc_kwh: float | None = None,
    ) -> Battery:
        """A battery given its round-trip efficiency, split evenly: each way is its square root."""
        if not (math.isfinite(round_trip_efficiency) and 0 < round_trip_efficiency <= 1):
            raise Invalid(
                f"battery: round_trip_efficiency is {round_trip_efficiency}; it must be in (0, 1]",
                detail={"field": "round_trip_efficiency"},
            )
        one_way = math.sqrt(round_trip_efficiency)
        return cls(
            capacity_kwh=capacity_kwh,
            max_charge_kw=max_charge_kw,
            max_discharge_kw=max_discharge_kw,
            initial_soc_kwh=initial_soc_kwh,
            min_soc_kwh=min_soc_kwh,
            charge_efficiency=one_way,
            discharge_efficiency=one_way,
            final_soc_kwh=final_soc_kwh,
        )


@dataclass(frozen=True, slots=True)
class BatteryPlan:
    """The battery's part of a plan, per planned slot, and the peak it leaves.

    ``peak_without_battery_kw`` is the highest base + EV load of the same plan with the battery
    idle, the figure the battery is there to lower.
    """

    charge_kw: tuple[float, ...]
    discharge_kw: tuple[float, ...]
    soc_kwh: tuple[float, ...]
    peak_kw: float
    peak_without_battery_kw: float


def soc_after(
    battery: Battery, *, soc_kwh: float, charge_kw: float, discharge_kw: float, hours: float
) -> float:
    """The state of charge after ``hours`` at constant charging and discharging power."""
    return (
        soc_kwh
        + battery.charge_efficiency * charge_kw * hours
        - discharge_kw * hours / battery.discharge_efficiency
    )


@dataclass(frozen=True, slots=True)
class LpBlock:
    """The battery's columns in the charging LP: bounds and the state-of-charge equalities.

    Columns, from ``first``: charge[0..T), discharge[0..T), soc[0..T). Used by
    ``zhishe.energy.charging``; the equality rows are returned as COO triplets.
    """

    first: int
    slots: int
    lower: FloatArray
    upper: FloatArray
    eq_rows: npt.NDArray[np.int64]
    eq_cols: npt.NDArray[np.int64]
    eq_vals: FloatArray
    eq_rhs: FloatArray

    @property
    def charge(self) -> slice:
        """The charge columns."""
        return slice(self.first, self.first + self.slots)

    @property
    def discharge(self) -> slice:
        """The discharge columns."""
        return slice(self.first + self.slots, self.first + 2 * self.slots)

    @property
    def soc(self) -> slice:
        """The state-of-charge columns."""
        return slice(self.first + 2 * self.slots, self.first + 3 * self.slots)

    @property
    def width(self) -> int:
        """How many columns the block has."""
        return 3 * self.slots


def lp_block(battery: Battery, *, first: int, hours: Sequence[float] | FloatArray) -> LpBlock:
    """The battery's columns starting at column ``first``, for slots lasting ``hours`` each."""
    h = np.asarray(hours, dtype=np.float64)
    t = h.size
    margin = _SOC_MARGIN * battery.capacity_kwh
    # The margin never excludes the initial state: a battery that starts at a bound may stay there.
    low_soc = min(battery.min_soc_kwh + margin, battery.initial_soc_kwh)
    high_soc = max(battery.capacity_kwh - margin, battery.initial_soc_kwh)
    soc_low = np.full(t, low_soc)
    if battery.final_soc_kwh is not None and t:
        soc_low[-1] = max(low_soc, min(battery.final_soc_kwh + margin, high_soc))
    lower = np.concatenate([np.zeros(2 * t), soc_low])
    upper = np.concatenate(
        [np.full(t, battery.max_charge_kw), np.full(t, battery.max_discharge_kw), np.full(t, high_soc)]
    )
    # soc[t] - soc[t-1] - eta_c * h * charge[t] + h / eta_d * discharge[t] = 0 (soc[-1] is given)
    idx = np.arange(t, dtype=np.int64)
    rows = [idx, idx, idx]
    cols = [first + 2 * t + idx, first + idx, first + t + idx]
    vals = [np.ones(t), -battery.charge_efficiency * h, h / battery.discharge_efficiency]
    if t > 1:
        rows.append(idx[1:])
        cols.append(first + 2 * t + idx[:-1])
        vals.append(-np.ones(t - 1))
    rhs = np.zeros(t)
    if t:
        rhs[0] = battery.initial_soc_kwh
    return LpBlock(
        first=first,
        slots=t,
        lower=lower,
        upper=upper,
        eq_rows=np.concatenate(rows),
        eq_cols=np.concatenate(cols),
        eq_vals=np.concatenate(vals),
        eq_rhs=rhs,
    )
