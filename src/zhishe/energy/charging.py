"""EV charging and community battery scheduling: a linear programme over time slots, planned again
whenever a car arrives or leaves, with earliest-deadline-first and round-robin baselines.

The model (all powers in kW, energies in kWh, times aware and UTC inside):

- **Slots.** A ``Site`` has a grid of equal slots (e.g. 96 x 15 min) from ``start``, with the
  transformer limit and the forecast base load per slot. A plan made at ``now`` covers the slot
  containing ``now`` (shortened to start at ``now``) up to the end of the grid.
- **Cars.** Each car gets one power per slot, held while it is plugged in during that slot, between
  0 and its maximum power. A car present for only part of a slot (it arrives or leaves inside it)
  gets that part of the slot's energy: ``power * overlap hours``. Its power still counts in full
  against the slot's limits, since power limits hold at every instant. No car gets more than it
  still needs (``energy_kwh - delivered_kwh``).
- **Limits.** In every slot the cars' total power stays within ``limit - base load``, and, per
  phase, within ``share * limit - base load on that phase`` (default shares: a third each; the
  per-phase base load defaults to the total split in the same shares). A car on ``L1``, ``L2`` or
  ``L3`` loads that phase with its full power; a three-phase car (``L1L2L3``) loads each phase with
  a third of it. A car whose phase is unknown (``None``) counts with its full power against every
  phase: it might be a single-phase car on any of them, and this is the only count that is safe
  whatever its wiring. A battery, a balanced three-phase inverter, adds a third of its net charging
  power to each phase.
- **Base load above the limit.** Where the forecast base load alone is above the limit, the plan
  gives the cars zero power in that slot; where it is above a phase's share, zero to every car
  that loads that phase (a car on another phase may still charge). Such slots are listed in
  ``ChargingPlan.overloaded_slots``: cars cannot lower a base load, and a forecast peak must not
  stop the whole night's charging. With ``on_overload="refuse"`` the plan raises ``Invalid``
  naming the first such slot instead.
- **Objective: energy first, then fairness, then early delivery.** A car's *share* is what it is
  served (energy before ``now`` included, so fairness carries across re-plans) over what it could
  get alone (within its window, power, remaining need and the slot limits); measuring against
  that, not the request, keeps a car that asks for more than it can physically take from holding
  everyone else's share down. ``fairness`` chooses how the order is enforced:

  - ``"staged"``: literally two LPs. Stage 1 maximises the energy; stage 2 holds the total at
    its optimum (relative tolerance 1e-6) and maximises the lowest share (max-min), with a small
    weight on early slots as the tie-break, so a car that leaves early is charged early.
  - ``"weighted"`` (default): one LP whose objective is energy + 1e-3 x fairness + 1e-6 x
    earliness. Fairness is a concave piecewise-linear utility of each share (six pieces, each a
    sixth of the attainable energy, worth 1, 1/2, ... 1/32 per kWh), which lifts the lowest
    shares first and spreads what is short over the other cars instead of leaving it wherever
    the solver lands, plus the lowest share itself (max-min, worth 2 x the mean target), which
    settles ties inside a piece. For small enough weights a weighted LP's optimum is a
    lexicographic one; with these, the energy given up for fairness is at most 1e-3 x the
    fairness terms' range, under 0.3 % of the cars' attainable energy. The tests check that it
    matches the staged solve's energy and lowest share on hand-checked cases and stays within
    that bound on random ones; on the 200-car benchmark it loses under 1e-6 of the energy, in a
    fraction of the staged solve's time (``docs/benchmarks-charging.md``).
  - ``"none"``: one LP, energy with the early-slot weight (1e-4).
- **Battery.** With a ``Battery`` the cars' power plus the battery's net charging power must fit
  the headroom, so discharging lets more EV energy through under the limit; the battery never
  exports (grid import stays at or above zero). The energy and fairness stages run as above with
  the battery free, then a last stage ("peak") holds each car's energy and minimises the peak grid
  import (base + EV + charge - discharge), with a small cost on the energy through the battery so
  it does not charge and discharge at once. With no sessions, this is plain peak shaving.
- **Online.** Call ``plan`` (or ``Scheduler.plan``) with the sessions present and the energy each
  has had so far, at every arrival and departure; ``simulate_online`` does this over a trace.

Results are frozen dataclasses; after the solve, powers are clipped and, where the solver's
tolerance left a slot a hair over its limit, scaled down, so the limits hold exactly as stated.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import linprog

from zhishe.core.errors import Invalid, NotFound
from zhishe.energy.battery import Battery, BatteryPlan, LpBlock, lp_block, soc_after

__all__ = [
    "PHASES",
    "ChargingPlan",
    "ChargingSession",
    "Fairness",
    "OnlineResult",
    "Phase",
    "Policy",
    "Scheduler",
    "SessionPlan",
    "Site",
    "StageReport",
    "plan",
    "plan_edf",
    "plan_round_robin",
    "simulate_online",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Phase = Literal["L1", "L2", "L3", "L1L2L3"]
Policy = Literal["lp", "edf", "round_robin"]
OnOverload = Literal["zero", "refuse"]
Fairness = Literal["weighted", "staged", "none"]

PHASES: tuple[Phase, ...] = ("L1", "L2", "L3", "L1L2L3")

#: How much of each phase a car's power loads, by its ``phase`` (None: unknown, counted on each).
_PHASE_WEIGHTS: dict[str | None, tuple[float, float, float]] = {
    "L1": (1.0, 0.0, 0.0),
    "L2": (0.0, 1.0, 0.0),
    "L3": (0.0, 0.0, 1.0),
    "L1L2L3": (1 / 3, 1 / 3, 1 / 3),
    None: (1.0, 1.0, 1.0),
}
_TOTAL_TOLERANCE = 1e-6  # later stages keep the earlier stages' energy within this relative tolerance
_EARLY_WEIGHT = 1e-4  # staged and none: the early-slot weight (at most this share is traded for it)
_SEGMENTS = 6  # weighted: the fairness utility's pieces, each a sixth of a car's attainable energy
_SEGMENT_SLOPES = 0.5 ** np.arange(_SEGMENTS)  # 1, 1/2, ... 1/32 per kWh: the lowest shares first
_FAIR_WEIGHT = 1e-3  # weighted: a kWh to a car at its lowest share is worth this much of a kWh of energy
_EARLY_WEIGHT_WEIGHTED = 1e-6  # weighted: below the smallest fairness step (1e-3 / 32 per kWh)
_WEIGHTED_SCALE = 1e3  # weighted: the objective in thousandths of a kWh
_PEAK_WEIGHT = 1e-5  # peak stage: at most this fraction of the peak is traded for the tie-breaks
_THROUGHPUT_COST = 1e-2  # peak stage: a small cost per kWh through the battery
_TINY = 1e-9
_STATUS = {
    0: "optimal",
    1: "iteration or time limit reached",
    2: "infeasible",
    3: "unbounded",
    4: "numerical difficulties",
}


def _finite(where: str, name: str, value: float, *, minimum: float | None = 0.0) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise Invalid(f"{where}: {name} is {value!r}; it must be a finite number", detail={"field": name})
    if minimum is not None and value < minimum:
        raise Invalid(f"{where}: {name} is {value}; it must be {minimum} or more", detail={"field": name})


def _aware(where: str, name: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise Invalid(
            f"{where}: {name} {value!r} has no timezone; give an aware datetime", detail={"field": name}
        )
    return value.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class ChargingSession:
    """A car plugged in (or expected) between ``arrival`` and ``departure``.

    ``energy_kwh`` is what it asked for in total, ``delivered_kwh`` what it has had so far, and
    ``phase`` how it is connected when known: ``L1``/``L2``/``L3`` (single phase), ``L1L2L3``
    (three phases) or None (unknown; counted on every phase).
    """

    session_id: str
    arrival: datetime
    departure: datetime
    energy_kwh: float
    max_power_kw: float
    phase: Phase | None = None
    delivered_kwh: float = 0.0

    def __post_init__(self) -> None:
        where = f"session {self.session_id!r}"
        object.__setattr__(self, "arrival", _aware(where, "arrival", self.arrival))
        object.__setattr__(self, "departure", _aware(where, "departure", self.departure))
        if self.departure <= self.arrival:
            raise Invalid(
                f"{where}: departure {self.departure.isoformat()} is not after arrival "
                f"{self.arrival.isoformat()}",
                detail={"field": "departure"},
            )
        for name in ("energy_kwh", "max_power_kw", "delivered_kwh"):
            _finite(where, name, getattr(self, name))
        if self.phase not in _PHASE_WEIGHTS:
            raise Invalid(
                f"{where}: phase {self.phase!r} is not one of L1, L2, L3, L1L2L3 or None",
                detail={"field": "phase"},
            )

    @property
    def remaining_kwh(self) -> float:
        """The energy the car still needs."""
        return max(self.energy_kwh - self.delivered_kwh, 0.0)


@dataclass(frozen=True)
class Site:
    """A transformer's slot grid: the limit and the forecast base load per slot (kW).

    ``limit_kw`` is one figure or one per slot (for a transformer rated in kVA, pass kVA x power
    factor). ``phase_base_load_kw``, when known, gives the base load per phase (three sequences
    that must add up to ``base_load_kw``); otherwise it is taken as split in ``phase_shares``.
    """

    start: datetime
    slot: timedelta
    limit_kw: float | Sequence[float]
    base_load_kw: Sequence[float]
    phase_base_load_kw: Sequence[Sequence[float]] | None = None
    phase_shares: Sequence[float] = (1 / 3, 1 / 3, 1 / 3)
    _limit: FloatArray = field(init=False, repr=False, compare=False)
    _base: FloatArray = field(init=False, repr=False, compare=False)
    _phase_base: FloatArray = field(init=False, repr=False, compare=False)
    _shares: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "start", _aware("site", "start", self.start))
        if not isinstance(self.slot, timedelta) or self.slot <= timedelta(0):
            raise Invalid(f"site: slot {self.slot!r} must be a positive timedelta", detail={"field": "slot"})
        base = self._series("base_load_kw", self.base_load_kw, minimum=None)
        n = base.size
        if n == 0:
            raise Invalid(
                "site: base_load_kw is empty; give one value per slot", detail={"field": "base_load_kw"}
            )
        if isinstance(self.limit_kw, int | float):
            _finite("site", "limit_kw", self.limit_kw)
            limit = np.full(n, float(self.limit_kw))
        else:
            limit = self._series("limit_kw", self.limit_kw, minimum=0.0)
            if limit.size != n:
                raise Invalid(
                    f"site: limit_kw has {limit.size} values but base_load_kw has {n}",
                    detail={"field": "limit_kw"},
                )
        shares = np.asarray([float(v) for v in self.phase_shares], dtype=np.float64)
        if (
            shares.size != 3
            or not np.all(np.isfinite(shares))
            or np.any(shares < 0)
            or abs(shares.sum() - 1) > 1e-9
        ):
            raise Invalid(
                f"site: phase_shares {tuple(self.phase_shares)} must be three non-negative numbers adding up to 1",
                detail={"field": "phase_shares"},
            )
        if self.phase_base_load_kw is None:
            phase_base = shares[:, None] * base[None, :]
        else:
            if len(self.phase_base_load_kw) != 3:
                raise Invalid(
                    "site: phase_base_load_kw must have three sequences (L1, L2, L3)",
                    detail={"field": "phase_base_load_kw"},
                )
            rows = [
                self._series(f"phase_base_load_kw[{k}]", values, minimum=None)
                for k, values in enumerate(self.phase_base_load_kw)
            ]
            for k, row in enumerate(rows):
                if row.size != n:
                    raise Invalid(
                        f"site: phase_base_load_kw[{k}] has {row.size} values but base_load_kw has {n}",
                        detail={"field": "phase_base_load_kw"},
                    )
            phase_base = np.vstack(rows)
            gap = np.abs(phase_base.sum(axis=0) - base)
            bad = np.flatnonzero(gap > np.maximum(1e-3, 1e-6 * np.abs(base)))
            if bad.size:
                t = int(bad[0])
                raise Invalid(
                    f"site: slot {t}: the phase base loads add up to {phase_base[:, t].sum():.3f} kW "
                    f"but base_load_kw is {base[t]:.3f} kW",
                    detail={"field": "phase_base_load_kw", "slot": t},
                )
            set_(self, "phase_base_load_kw", tuple(tuple(row.tolist()) for row in rows))
        set_(self, "base_load_kw", tuple(base.tolist()))
        if not isinstance(self.limit_kw, int | float):
            set_(self, "limit_kw", tuple(limit.tolist()))
        set_(self, "phase_shares", tuple(shares.tolist()))
        for name, array in (
            ("_limit", limit),
            ("_base", base),
            ("_phase_base", phase_base),
            ("_shares", shares),
        ):
            array.setflags(write=False)
            set_(self, name, array)

    @staticmethod
    def _series(name: str, values: Sequence[float], *, minimum: float | None) -> FloatArray:
        array = np.asarray([float(v) for v in values], dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            t = int(bad[0])
            raise Invalid(
                f"site: {name} slot {t} is {array[t]}; it must be a finite number",
                detail={"field": name, "slot": t},
            )
        if minimum is not None:
            low = np.flatnonzero(array < minimum)
            if low.size:
                t = int(low[0])
                raise Invalid(
                    f"site: {name} slot {t} is {array[t]}; it must be {minimum} or more",
                    detail={"field": name, "slot": t},
                )
        return array

    @property
    def n_slots(self) -> int:
        """How many slots the grid has."""
        return int(self._base.size)

    @property
    def end(self) -> datetime:
        """The end of the last slot."""
        return self.start + self.n_slots * self.slot

    def slot_start(self, index: int) -> datetime:
        """The start of slot ``index`` of the grid."""
        return self.start + index * self.slot


@dataclass(frozen=True, slots=True)
class StageReport:
    """One LP solve: its name, HiGHS's status, the value it minimised and its time (seconds).

    Stages: ``energy+fairness`` (weighted), ``energy`` and ``fairness`` (staged; ``energy`` alone
    for "none"), ``peak`` (with a battery). The energy stages' value is minus the weighted kWh.
    """

    name: str
    status: str
    objective: float
    seconds: float


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """One car's plan: power per planned slot (kW while plugged in) and what it adds up to.

    ``energy_kwh`` is what this plan delivers from ``now``; ``served_kwh`` adds what the car had
    before; ``fraction_served`` and ``shortfall_kwh`` compare that with what it asked for.
    """

    session: ChargingSession
    power_kw: tuple[float, ...]
    energy_kwh: float
    served_kwh: float
    shortfall_kwh: float
    fraction_served: float

    @property
    def session_id(self) -> str:
        """The session's id."""
        return self.session.session_id


@dataclass(frozen=True, slots=True)
class ChargingPlan:
    """A schedule from ``start`` (the ``now`` it was made at) to the end of the site's grid.

    Per slot: its start (the first is ``start``), the base load, the headroom the cars and the
    battery may use, the cars' total power and the grid import. ``objective_kwh`` is the energy the
    plan delivers; ``min_share`` the lowest share of its attainable energy any car gets (1.0 when
    nobody is short). ``overloaded_slots`` are the slot starts where the base load alone is above
    the limit (the cars get nothing there).
    """

    policy: Policy
    start: datetime
    end: datetime
    slot: timedelta
    slot_starts: tuple[datetime, ...]
    base_load_kw: tuple[float, ...]
    headroom_kw: tuple[float, ...]
    ev_load_kw: tuple[float, ...]
    grid_load_kw: tuple[float, ...]
    sessions: tuple[SessionPlan, ...]
    battery: BatteryPlan | None
    objective_kwh: float
    min_share: float
    overloaded_slots: tuple[datetime, ...]
    status: str
    stages: tuple[StageReport, ...]
    build_seconds: float
    solve_seconds: float

    def session(self, session_id: str) -> SessionPlan:
        """The plan of one session (``NotFound`` if it was not planned)."""
        for item in self.sessions:
            if item.session.session_id == session_id:
                return item
        raise NotFound(f"session {session_id!r} is not in this plan", detail={"session_id": session_id})

    def slot_end(self, index: int) -> datetime:
        """The end of planned slot ``index``."""
        return self.slot_starts[index + 1] if index + 1 < len(self.slot_starts) else self.end


@dataclass(frozen=True, slots=True)
class OnlineResult:
    """What an online run delivered, per session (in input order) and in total."""

    policy: Policy
    session_ids: tuple[str, ...]
    served_kwh: tuple[float, ...]
    fraction_served: tuple[float, ...]
    energy_kwh: float
    replans: int
    plan_seconds: tuple[float, ...]
    final_soc_kwh: float | None


# --------------------------------------------------------------------------------------------------
# The problem's geometry: which (car, slot) pairs exist and what each slot allows.


@dataclass(frozen=True, slots=True)
class _Problem:
    site: Site
    now: datetime
    sessions: tuple[ChargingSession, ...]
    t0: int
    hours: FloatArray  # per planned slot: its length in hours (the first may be short)
    base: FloatArray
    headroom: FloatArray  # (T,) total headroom, >= 0
    phase_headroom: FloatArray  # (3, T), >= 0
    overloaded: npt.NDArray[np.bool_]
    weights: FloatArray  # (n, 3) phase weights per car
    requested: FloatArray
    delivered: FloatArray
    remaining: FloatArray
    pmax: FloatArray
    departure_s: FloatArray
    arrival_s: FloatArray
    car: IntArray  # per pair
    slot: IntArray  # per pair, relative to t0
    kwh_per_kw: FloatArray  # per pair: hours the car is plugged in during the slot

    @property
    def n_slots(self) -> int:
        return int(self.hours.size)

    @property
    def n_cars(self) -> int:
        return len(self.sessions)

    @property
    def n_pairs(self) -> int:
        return int(self.car.size)

    def attainable(self) -> FloatArray:
        """Per car: what it could get if it were alone (within its window, power, need and limits)."""
        w = self.weights[self.car]
        per_phase = np.where(w > 0, self.phase_headroom[:, self.slot].T / np.where(w > 0, w, 1.0), np.inf)
        power = np.minimum(np.minimum(self.pmax[self.car], self.headroom[self.slot]), per_phase.min(axis=1))
        alone = np.bincount(self.car, weights=power * self.kwh_per_kw, minlength=self.n_cars)
        return self.delivered + np.minimum(self.remaining, alone)


def _prepare(
    *, now: datetime, sessions: Sequence[ChargingSession], site: Site, on_overload: OnOverload
) -> _Problem:
    now = _aware("plan", "now", now)
    if not site.start <= now < site.end:
        raise Invalid(
            f"now {now.isoformat()} is outside the site's horizon [{site.start.isoformat()}, {site.end.isoformat()})",
            detail={"field": "now"},
        )
    if on_overload not in ("zero", "refuse"):
        raise Invalid(
            f"on_overload {on_overload!r} must be 'zero' or 'refuse'", detail={"field": "on_overload"}
        )
    seen: set[str] = set()
    for s in sessions:
        if not isinstance(s, ChargingSession):
            raise Invalid(
                f"sessions must be ChargingSession objects, not {type(s).__name__}",
                detail={"field": "sessions"},
            )
        if s.session_id in seen:
            raise Invalid(f"session {s.session_id!r} is given twice", detail={"session_id": s.session_id})
        seen.add(s.session_id)
    step = site.slot.total_seconds()
    n = site.n_slots
    now_s = (now - site.start).total_seconds()
    t0 = min(int(now_s // step), n - 1)
    starts = np.arange(t0, n, dtype=np.float64) * step
    starts[0] = now_s
    ends = np.arange(t0 + 1, n + 1, dtype=np.float64) * step
    hours = (ends - starts) / 3600.0
    base = site._base[t0:].copy()
    limit = site._limit[t0:]
    raw = limit - base
    raw_phase = limit[None, :] * site._shares[:, None] - site._phase_base[:, t0:]
    overloaded = (raw < 0) | (raw_phase < 0).any(axis=0)
    if on_overload == "refuse" and overloaded.any():
        t = int(np.flatnonzero(overloaded)[0])
        when = site.slot_start(t0 + t).isoformat()
        if raw[t] < 0:
            what = f"the base load {base[t]:.3f} kW is above the limit {limit[t]:.3f} kW"
        else:
            k = int(np.argmin(raw_phase[:, t]))
            what = (
                f"the base load on L{k + 1} {site._phase_base[k, t0 + t]:.3f} kW is above its share of the limit "
                f"{limit[t] * site._shares[k]:.3f} kW"
            )
        raise Invalid(f"slot {t0 + t} ({when}): {what}", detail={"slot": t0 + t, "start": when})
    headroom = np.maximum(raw, 0.0)
    phase_headroom = np.maximum(raw_phase, 0.0)

    count = len(sessions)
    arrival_s = np.asarray([(s.arrival - site.start).total_seconds() for s in sessions], dtype=np.float64)
    departure_s = np.asarray([(s.departure - site.start).total_seconds() for s in sessions], dtype=np.float64)
    requested = np.asarray([s.energy_kwh for s in sessions], dtype=np.float64)
    delivered = np.asarray([s.delivered_kwh for s in sessions], dtype=np.float64)
    remaining = np.maximum(requested - delivered, 0.0)
    pmax = np.asarray([s.max_power_kw for s in sessions], dtype=np.float64)
    weights = np.asarray([_PHASE_WEIGHTS[s.phase] for s in sessions], dtype=np.float64).reshape(count, 3)

    lo = np.maximum(arrival_s, now_s)
    hi = np.minimum(departure_s, n * step)
    active = (hi > lo) & (remaining > _TINY) & (pmax > _TINY)
    first = np.where(active, np.floor(lo / step), 0).astype(np.int64)
    last = np.where(active, np.ceil(hi / step), 0).astype(np.int64)
    counts = np.where(active, last - first, 0)
    car = np.repeat(np.arange(count, dtype=np.int64), counts)
    offsets = np.cumsum(counts) - counts
    slot_abs = first[car] + np.arange(car.size, dtype=np.int64) - offsets[car]
    overlap = np.minimum(hi[car], (slot_abs + 1) * step) - np.maximum(lo[car], slot_abs * step)
    keep = overlap > 1e-6
    car, slot_abs, overlap = car[keep], slot_abs[keep], overlap[keep]
    return _Problem(
        site=site,
        now=now,
        sessions=tuple(sessions),
        t0=t0,
        hours=hours,
        base=base,
        headroom=headroom,
        phase_headroom=phase_headroom,
        overloaded=overloaded,
        weights=weights,
        requested=requested,
        delivered=delivered,
        remaining=remaining,
        pmax=pmax,
        departure_s=departure_s,
        arrival_s=arrival_s,
        car=car,
        slot=slot_abs - t0,
        kwh_per_kw=overlap / 3600.0,
    )


# --------------------------------------------------------------------------------------------------
# The LP.


@dataclass(slots=True)
class _Rows:
    """Inequality rows ``A x <= b`` gathered as COO triplets."""

    rows: list[IntArray] = field(default_factory=list)
    cols: list[IntArray] = field(default_factory=list)
    vals: list[FloatArray] = field(default_factory=list)
    rhs: list[FloatArray] = field(default_factory=list)
    count: int = 0

    def add(self, rows: IntArray, cols: IntArray, vals: FloatArray | float, *, offset: int) -> None:
        self.rows.append(np.asarray(rows, dtype=np.int64) + offset)
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(
            np.broadcast_to(np.asarray(vals, dtype=np.float64), np.shape(rows)).astype(np.float64)
        )

    def block(self, height: int, rhs: FloatArray) -> int:
        """Reserve ``height`` rows with right-hand side ``rhs``; return the first row's index."""
        first = self.count
        self.rhs.append(np.asarray(rhs, dtype=np.float64).reshape(height))
        self.count += height
        return first

    def matrix(self, width: int) -> tuple[sparse.csr_matrix, FloatArray]:
        if not self.count:
            return sparse.csr_matrix((0, width)), np.zeros(0)
        a = sparse.coo_matrix(
            (np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
            shape=(self.count, width),
        ).tocsr()
        return a, np.concatenate(self.rhs)


@dataclass(slots=True)
class _Lp:
    """The charging LP's columns and its fixed rows; each stage adds its own rows and objective.

    Columns: car powers (one per pair), the fairness share lambda, the fairness utility's segments
    (``segments`` per fair car, weighted mode only), the battery's block, the peak.
    """

    problem: _Problem
    battery: LpBlock | None
    width: int
    col_share: int
    col_seg: int
    segments: int
    col_peak: int
    lower: FloatArray
    upper: FloatArray
    base_rows: _Rows
    eq: tuple[sparse.csr_matrix, FloatArray] | None
    fair_cars: IntArray
    targets: FloatArray
    early: FloatArray  # per pair: weight of its slot, 1 (first slot) down towards 0 (last)


def _build(problem: _Problem, battery: Battery | None, *, segments: int) -> _Lp:
    p = problem
    nx, t_count = p.n_pairs, p.n_slots
    cars = np.unique(p.car)
    targets = p.attainable()
    fair = cars[(targets[cars] - p.delivered[cars]) > _TINY]
    segments = segments if fair.size else 0
    col_share = nx
    col_seg = nx + 1
    first_battery = col_seg + fair.size * segments
    block = lp_block(battery, first=first_battery, hours=p.hours) if battery is not None else None
    col_peak = first_battery + (block.width if block else 0)
    width = col_peak + (1 if block else 0)
    lower = np.zeros(width)
    upper = np.full(width, np.inf)
    upper[:nx] = p.pmax[p.car]
    upper[col_share] = 1.0 if segments else 0.0
    upper[col_seg:first_battery] = 1.0 / max(segments, 1)
    if block is not None:
        lower[block.first : block.first + block.width] = block.lower
        upper[block.first : block.first + block.width] = block.upper
    cols = np.arange(nx, dtype=np.int64)
    rows = _Rows()
    # each car: energy within what it still needs
    local = np.full(p.n_cars, -1, dtype=np.int64)
    local[cars] = np.arange(cars.size)
    first = rows.block(cars.size, p.remaining[cars])
    rows.add(local[p.car], cols, p.kwh_per_kw, offset=first)
    # each slot: total power (cars + battery net) within the headroom
    first = rows.block(t_count, p.headroom)
    rows.add(p.slot, cols, 1.0, offset=first)
    ts = np.arange(t_count, dtype=np.int64)
    if block is not None:
        rows.add(ts, np.arange(block.charge.start, block.charge.stop), 1.0, offset=first)
        rows.add(ts, np.arange(block.discharge.start, block.discharge.stop), -1.0, offset=first)
    # each phase and slot: the phase's load within its headroom
    for k in range(3):
        w = p.weights[p.car, k]
        on = w > 0
        if not on.any() and block is None:
            continue
        first = rows.block(t_count, p.phase_headroom[k])
        rows.add(p.slot[on], cols[on], w[on], offset=first)
        if block is not None:
            rows.add(ts, np.arange(block.charge.start, block.charge.stop), 1 / 3, offset=first)
            rows.add(ts, np.arange(block.discharge.start, block.discharge.stop), -1 / 3, offset=first)
    # the utility's segments add up to at most each fair car's share: sum(seg) * target - e <= d
    if segments:
        fair_local = np.full(p.n_cars, -1, dtype=np.int64)
        fair_local[fair] = np.arange(fair.size)
        on = fair_local[p.car] >= 0
        first = rows.block(fair.size, p.delivered[fair])
        rows.add(fair_local[p.car[on]], cols[on], -p.kwh_per_kw[on], offset=first)
        rows.add(
            np.repeat(np.arange(fair.size), segments),
            col_seg + np.arange(fair.size * segments),
            np.repeat(targets[fair], segments),
            offset=first,
        )
        # and lambda, the lowest share, at most each car's segments: lambda - sum(seg) <= 0
        first = rows.block(fair.size, np.zeros(fair.size))
        rows.add(np.arange(fair.size), np.full(fair.size, col_share), 1.0, offset=first)
        rows.add(
            np.repeat(np.arange(fair.size), segments),
            col_seg + np.arange(fair.size * segments),
            -1.0,
            offset=first,
        )
    eq = None
    if block is not None:
        # no export: base + cars + charge - discharge >= 0
        first = rows.block(t_count, p.base)
        rows.add(p.slot, cols, -1.0, offset=first)
        rows.add(ts, np.arange(block.charge.start, block.charge.stop), -1.0, offset=first)
        rows.add(ts, np.arange(block.discharge.start, block.discharge.stop), 1.0, offset=first)
        eq_matrix = sparse.coo_matrix(
            (block.eq_vals, (block.eq_rows, block.eq_cols)), shape=(t_count, width)
        ).tocsr()
        eq = (eq_matrix, block.eq_rhs)
    early = 1.0 - p.slot / max(t_count, 1)
    return _Lp(
        problem=p,
        battery=block,
        width=width,
        col_share=col_share,
        col_seg=col_seg,
        segments=segments,
        col_peak=col_peak,
        lower=lower,
        upper=upper,
        base_rows=rows,
        eq=eq,
        fair_cars=fair,
        targets=targets,
        early=early,
    )


def _copy_rows(rows: _Rows) -> _Rows:
    return _Rows(list(rows.rows), list(rows.cols), list(rows.vals), list(rows.rhs), rows.count)


def _solve(
    name: str,
    lp: _Lp,
    rows: _Rows,
    cost: FloatArray,
    lower: FloatArray,
    upper: FloatArray,
    time_limit_s: float | None,
    *,
    method: str = "highs",
) -> tuple[FloatArray | None, StageReport]:
    a_ub, b_ub = rows.matrix(lp.width)
    options: dict[str, Any] = {"presolve": True}
    if time_limit_s is not None:
        options["time_limit"] = float(time_limit_s)
    started = time.perf_counter()
    result = linprog(
        cost,
        A_ub=a_ub if a_ub.shape[0] else None,
        b_ub=b_ub if a_ub.shape[0] else None,
        A_eq=lp.eq[0] if lp.eq else None,
        b_eq=lp.eq[1] if lp.eq else None,
        bounds=np.column_stack([lower, upper]),
        method=method,
        options=options,
    )
    seconds = time.perf_counter() - started
    status = _STATUS.get(int(result.status), str(result.message))
    ok = result.status == 0 and result.x is not None
    objective = float(result.fun) if ok else math.nan
    report = StageReport(name=name, status=status, objective=objective, seconds=seconds)
    return (np.asarray(result.x, dtype=np.float64) if ok else None), report


def _energy(lp: _Lp, x: FloatArray) -> float:
    return float(lp.problem.kwh_per_kw @ x[: lp.problem.n_pairs])


def _unreachable(battery: Battery | None, report: StageReport) -> Invalid | None:
    if report.status == "infeasible" and battery is not None and battery.final_soc_kwh is not None:
        return Invalid(
            f"battery: final_soc_kwh {battery.final_soc_kwh} cannot be reached by the end of the horizon "
            "within the limits",
            detail={"field": "final_soc_kwh"},
        )
    return None


def _solve_lp(
    problem: _Problem,
    battery: Battery | None,
    *,
    fairness: Fairness,
    time_limit_s: float | None,
) -> tuple[FloatArray, FloatArray | None, FloatArray | None, list[StageReport], str, float]:
    """The staged solve; returns car powers, battery charge and discharge, stages, status, build time."""
    started = time.perf_counter()
    lp = _build(problem, battery, segments=_SEGMENTS if fairness == "weighted" else 0)
    build_seconds = time.perf_counter() - started
    p = problem
    nx = p.n_pairs
    stages: list[StageReport] = []
    notes: list[str] = []
    solution = np.zeros(lp.width)
    if lp.battery is not None and battery is not None:
        solution[lp.battery.soc] = battery.initial_soc_kwh
    if nx:
        cost = np.zeros(lp.width)
        if fairness == "weighted":
            # energy >> fairness utility >> early slots, in one LP (see the module's docstring)
            cost[:nx] = -p.kwh_per_kw * (1.0 + _EARLY_WEIGHT_WEIGHTED * lp.early)
            slopes = np.tile(_SEGMENT_SLOPES[: lp.segments], lp.fair_cars.size)
            per_share = np.repeat(lp.targets[lp.fair_cars], lp.segments)
            cost[lp.col_seg : lp.col_seg + slopes.size] = -_FAIR_WEIGHT * slopes * per_share
            if lp.fair_cars.size:
                # lambda breaks the utility's ties inside a piece in favour of the lowest share
                cost[lp.col_share] = -_FAIR_WEIGHT * 2.0 * float(lp.targets[lp.fair_cars].mean())
            # HiGHS's optimality tolerance is absolute (1e-7): scale the objective up so that the
            # early-slot weight's differences between slots stay well above it
            cost *= _WEIGHTED_SCALE
            name = "energy+fairness"
        else:
            cost[:nx] = -p.kwh_per_kw * ((1.0 + _EARLY_WEIGHT * lp.early) if fairness == "none" else 1.0)
            name = "energy"
        x, report = _solve(name, lp, _copy_rows(lp.base_rows), cost, lp.lower, lp.upper, time_limit_s)
        if fairness == "weighted":
            report = replace(report, objective=report.objective / _WEIGHTED_SCALE)
        stages.append(report)
        if x is None:
            raise _unreachable(battery, report) or RuntimeError(
                f"the charging LP failed in stage {name!r}: {report.status}"
            )
        solution = x
        if fairness == "staged" and lp.fair_cars.size:
            total = _energy(lp, x)
            rows = _copy_rows(lp.base_rows)
            _fairness_rows(lp, rows, total)
            cost = np.zeros(lp.width)
            cost[:nx] = -p.kwh_per_kw * lp.early
            cost[lp.col_share] = -max(total, 1e-3) / _EARLY_WEIGHT
            upper = lp.upper.copy()
            upper[lp.col_share] = 1.0
            x, report = _solve("fairness", lp, rows, cost, lp.lower, upper, time_limit_s, method="highs-ipm")
            stages.append(report)
            if x is None:
                notes.append(f"fairness stage: {report.status}")
            else:
                solution = x
    if lp.battery is not None and battery is not None:
        x, report = _peak_stage(lp, battery, solution, time_limit_s)
        stages.append(report)
        if x is None:
            if not nx:
                raise _unreachable(battery, report) or RuntimeError(
                    f"the battery LP failed in stage 'peak': {report.status}"
                )
            notes.append(f"peak stage: {report.status}")
        else:
            solution = x
    status = "optimal" if not notes else "optimal energy; " + "; ".join(notes)
    charge = solution[lp.battery.charge] if lp.battery else None
    discharge = solution[lp.battery.discharge] if lp.battery else None
    return solution[:nx], charge, discharge, stages, status, build_seconds


def _fairness_rows(lp: _Lp, rows: _Rows, total: float) -> None:
    """Rows of the staged fairness stage: the total held at ``total``; each fair car's share >= lambda."""
    p = lp.problem
    cols = np.arange(p.n_pairs, dtype=np.int64)
    first = rows.block(1, np.asarray([-(total - _TOTAL_TOLERANCE * max(total, 1.0))]))
    rows.add(np.zeros(p.n_pairs, dtype=np.int64), cols, -p.kwh_per_kw, offset=first)
    fair = lp.fair_cars
    local = np.full(p.n_cars, -1, dtype=np.int64)
    local[fair] = np.arange(fair.size)
    first = rows.block(fair.size, p.delivered[fair])
    on = local[p.car] >= 0
    rows.add(local[p.car[on]], cols[on], -p.kwh_per_kw[on], offset=first)
    rows.add(np.arange(fair.size), np.full(fair.size, lp.col_share), lp.targets[fair], offset=first)


def _peak_stage(
    lp: _Lp, battery: Battery, solution: FloatArray, time_limit_s: float | None
) -> tuple[FloatArray | None, StageReport]:
    """Minimise the peak grid import, each car keeping the energy the earlier stages gave it."""
    p = lp.problem
    block = lp.battery
    assert block is not None
    nx = p.n_pairs
    rows = _copy_rows(lp.base_rows)
    cols = np.arange(nx, dtype=np.int64)
    if nx:
        energy = np.bincount(p.car, weights=p.kwh_per_kw * solution[:nx], minlength=p.n_cars)
        held = np.flatnonzero(energy > _TINY)
        if held.size:
            local = np.full(p.n_cars, -1, dtype=np.int64)
            local[held] = np.arange(held.size)
            keep = energy[held] - _TOTAL_TOLERANCE * np.maximum(energy[held], 1.0)
            first = rows.block(held.size, -keep)
            on = local[p.car] >= 0
            rows.add(local[p.car[on]], cols[on], -p.kwh_per_kw[on], offset=first)
    ts = np.arange(p.n_slots, dtype=np.int64)
    first = rows.block(p.n_slots, -p.base)
    rows.add(p.slot, cols, 1.0, offset=first)
    rows.add(ts, np.arange(block.charge.start, block.charge.stop), 1.0, offset=first)
    rows.add(ts, np.arange(block.discharge.start, block.discharge.stop), -1.0, offset=first)
    rows.add(ts, np.full(p.n_slots, lp.col_peak, dtype=np.int64), -1.0, offset=first)
    scale = max(float(p.base.max(initial=0.0) + p.pmax.sum()) + battery.max_charge_kw, 1.0)
    throughput = _THROUGHPUT_COST * np.concatenate([p.hours, p.hours])
    most = max(battery.max_charge_kw, battery.max_discharge_kw)
    tie_range = _energy(lp, solution) + float(throughput.sum()) * most + 1e-3
    cost = np.zeros(lp.width)
    cost[:nx] = -p.kwh_per_kw * lp.early
    cost[block.charge.start : block.discharge.stop] = throughput
    cost[lp.col_peak] = tie_range / (_PEAK_WEIGHT * scale)
    upper = lp.upper.copy()
    upper[lp.col_seg : block.first] = 0.0
    return _solve("peak", lp, rows, cost, lp.lower, upper, time_limit_s)


# --------------------------------------------------------------------------------------------------
# Baselines: per slot, in time order, with the same limits.


def _slot_groups(problem: _Problem) -> list[IntArray]:
    order = np.argsort(problem.slot, kind="stable")
    bounds = np.searchsorted(problem.slot[order], np.arange(problem.n_slots + 1))
    return [order[bounds[t] : bounds[t + 1]] for t in range(problem.n_slots)]


def _edf(problem: _Problem) -> FloatArray:
    """Earliest deadline first: each slot, cars in order of departure take what the limits allow."""
    p = problem
    x = np.zeros(p.n_pairs)
    remaining = p.remaining.copy()
    rank = np.lexsort((np.arange(p.n_cars), p.arrival_s, p.departure_s))
    position = np.empty(p.n_cars, dtype=np.int64)
    position[rank] = np.arange(p.n_cars)
    for t, pairs in enumerate(_slot_groups(p)):
        left = float(p.headroom[t])
        left_phase = p.phase_headroom[:, t].copy()
        for j in pairs[np.argsort(position[p.car[pairs]], kind="stable")]:
            i = int(p.car[j])
            w = p.weights[i]
            power = min(p.pmax[i], remaining[i] / p.kwh_per_kw[j], left)
            on = w > 0
            if on.any():
                power = min(power, float((left_phase[on] / w[on]).min()))
            power = max(power, 0.0)
            x[j] = power
            left -= power
            left_phase -= w * power
            remaining[i] = max(remaining[i] - power * p.kwh_per_kw[j], 0.0)
    return x


def _round_robin(problem: _Problem) -> FloatArray:
    """Equal shares: each slot, present cars' power rises together until a car or a limit is full."""
    p = problem
    x = np.zeros(p.n_pairs)
    remaining = p.remaining.copy()
    for t, pairs in enumerate(_slot_groups(p)):
        if not pairs.size:
            continue
        cars = p.car[pairs]
        cap = np.minimum(p.pmax[cars], remaining[cars] / p.kwh_per_kw[pairs])
        w = p.weights[cars]
        rate = np.zeros(pairs.size)
        left = float(p.headroom[t])
        left_phase = p.phase_headroom[:, t].copy()
        active = cap > _TINY
        while active.any() and left > _TINY:
            n_active = int(active.sum())
            load = w[active].sum(axis=0)
            step = min(float((cap[active] - rate[active]).min()), left / n_active)
            loaded = load > 0
            if loaded.any():
                step = min(step, float((left_phase[loaded] / load[loaded]).min()))
            step = max(step, 0.0)
            rate[active] += step
            left -= step * n_active
            left_phase -= step * load
            active &= cap - rate > _TINY
            full = left_phase <= _TINY * max(1.0, float(p.phase_headroom[:, t].max()))
            if full.any():
                active &= ~(w[:, full] > 0).any(axis=1)
            if step <= 0.0 and active.any():
                break
        x[pairs] = rate
        remaining[cars] = np.maximum(remaining[cars] - rate * p.kwh_per_kw[pairs], 0.0)
    return x


# --------------------------------------------------------------------------------------------------
# From a solution to a plan.


def _repair(
    problem: _Problem, x: FloatArray, charge: FloatArray | None, discharge: FloatArray | None
) -> tuple[FloatArray, FloatArray | None, FloatArray | None]:
    """Clip the solver's tolerance away, so every limit holds as stated."""
    p = problem
    x = np.clip(x, 0.0, p.pmax[p.car])
    x[x < _TINY] = 0.0
    net = np.zeros(p.n_slots)
    if charge is not None and discharge is not None:
        charge = np.clip(charge, 0.0, None)
        discharge = np.clip(discharge, 0.0, None)
        charge[charge < _TINY] = 0.0
        discharge[discharge < _TINY] = 0.0
        room = np.minimum(p.headroom, (p.phase_headroom * 3).min(axis=0)) + discharge
        charge = np.minimum(charge, np.maximum(room, 0.0))
        net = charge - discharge
    energy = np.bincount(p.car, weights=x * p.kwh_per_kw, minlength=p.n_cars)
    over = energy > p.remaining
    if over.any():
        factor = np.where(over, p.remaining / np.where(energy > 0, energy, 1.0), 1.0)
        x = x * factor[p.car]
    factor = np.ones(p.n_slots)
    load = np.bincount(p.slot, weights=x, minlength=p.n_slots)
    allowed = np.maximum(p.headroom - net, 0.0)
    factor = np.minimum(factor, np.where(load > allowed, allowed / np.where(load > 0, load, 1.0), 1.0))
    for k in range(3):
        load_k = np.bincount(p.slot, weights=x * p.weights[p.car, k], minlength=p.n_slots)
        allowed_k = np.maximum(p.phase_headroom[k] - net / 3, 0.0)
        factor = np.minimum(
            factor, np.where(load_k > allowed_k, allowed_k / np.where(load_k > 0, load_k, 1.0), 1.0)
        )
    return x * factor[p.slot], charge, discharge


def _assemble(
    problem: _Problem,
    *,
    policy: Policy,
    x: FloatArray,
    battery: Battery | None,
    charge: FloatArray | None,
    discharge: FloatArray | None,
    stages: Sequence[StageReport],
    status: str,
    build_seconds: float,
    solve_seconds: float,
) -> ChargingPlan:
    p = problem
    x, charge, discharge = _repair(p, x, charge, discharge)
    power = np.zeros((p.n_cars, p.n_slots))
    power[p.car, p.slot] = x
    energy = np.bincount(p.car, weights=x * p.kwh_per_kw, minlength=p.n_cars)
    served = p.delivered + energy
    fraction = np.where(p.requested > 0, served / np.where(p.requested > 0, p.requested, 1.0), 1.0)
    shortfall = np.maximum(p.requested - served, 0.0)
    ev_load = power.sum(axis=0)
    net = (charge - discharge) if charge is not None and discharge is not None else np.zeros(p.n_slots)
    grid = p.base + ev_load + net
    targets = p.attainable()
    fair = (targets - p.delivered) > _TINY
    min_share = float(np.min(served[fair] / targets[fair])) if fair.any() else 1.0
    battery_plan = None
    if battery is not None and charge is not None and discharge is not None:
        soc = np.empty(p.n_slots)
        level = battery.initial_soc_kwh
        for t in range(p.n_slots):
            level = soc_after(
                battery, soc_kwh=level, charge_kw=charge[t], discharge_kw=discharge[t], hours=p.hours[t]
            )
            soc[t] = level
        battery_plan = BatteryPlan(
            charge_kw=tuple(charge.tolist()),
            discharge_kw=tuple(discharge.tolist()),
            soc_kwh=tuple(soc.tolist()),
            peak_kw=float(grid.max(initial=0.0)),
            peak_without_battery_kw=float((p.base + ev_load).max(initial=0.0)),
        )
    site = p.site
    slot_starts = (p.now, *(site.slot_start(p.t0 + t) for t in range(1, p.n_slots)))
    return ChargingPlan(
        policy=policy,
        start=p.now,
        end=site.end,
        slot=site.slot,
        slot_starts=slot_starts,
        base_load_kw=tuple(p.base.tolist()),
        headroom_kw=tuple(p.headroom.tolist()),
        ev_load_kw=tuple(ev_load.tolist()),
        grid_load_kw=tuple(grid.tolist()),
        sessions=tuple(
            SessionPlan(
                session=s,
                power_kw=tuple(power[i].tolist()),
                energy_kwh=float(energy[i]),
                served_kwh=float(served[i]),
                shortfall_kwh=float(shortfall[i]),
                fraction_served=float(fraction[i]),
            )
            for i, s in enumerate(p.sessions)
        ),
        battery=battery_plan,
        objective_kwh=float(energy.sum()),
        min_share=min_share,
        overloaded_slots=tuple(slot_starts[t] for t in np.flatnonzero(p.overloaded)),
        status=status,
        stages=tuple(stages),
        build_seconds=build_seconds,
        solve_seconds=solve_seconds,
    )


# --------------------------------------------------------------------------------------------------
# Public entry points.


def plan(
    *,
    now: datetime,
    sessions: Sequence[ChargingSession],
    site: Site,
    battery: Battery | None = None,
    fairness: Fairness = "weighted",
    on_overload: OnOverload = "zero",
    time_limit_s: float | None = None,
) -> ChargingPlan:
    """The LP plan from ``now``: most energy, shortfalls shared max-min, the battery shaving the peak."""
    if fairness not in ("weighted", "staged", "none"):
        raise Invalid(
            f"fairness {fairness!r} must be 'weighted', 'staged' or 'none'", detail={"field": "fairness"}
        )
    problem = _prepare(now=now, sessions=sessions, site=site, on_overload=on_overload)
    x, charge, discharge, stages, status, build = _solve_lp(
        problem, battery, fairness=fairness, time_limit_s=time_limit_s
    )
    return _assemble(
        problem,
        policy="lp",
        x=x,
        battery=battery,
        charge=charge,
        discharge=discharge,
        stages=stages,
        status=status,
        build_seconds=build,
        solve_seconds=sum(s.seconds for s in stages),
    )


def plan_edf(
    *, now: datetime, sessions: Sequence[ChargingSession], site: Site, on_overload: OnOverload = "zero"
) -> ChargingPlan:
    """The earliest-deadline-first baseline from ``now``, within the same limits."""
    return _baseline("edf", now=now, sessions=sessions, site=site, on_overload=on_overload)


def plan_round_robin(
    *, now: datetime, sessions: Sequence[ChargingSession], site: Site, on_overload: OnOverload = "zero"
) -> ChargingPlan:
    """The equal-share (round robin) baseline from ``now``, within the same limits."""
    return _baseline("round_robin", now=now, sessions=sessions, site=site, on_overload=on_overload)


def _baseline(
    policy: Policy, *, now: datetime, sessions: Sequence[ChargingSession], site: Site, on_overload: OnOverload
) -> ChargingPlan:
    started = time.perf_counter()
    problem = _prepare(now=now, sessions=sessions, site=site, on_overload=on_overload)
    build = time.perf_counter() - started
    started = time.perf_counter()
    x = _edf(problem) if policy == "edf" else _round_robin(problem)
    seconds = time.perf_counter() - started
    return _assemble(
        problem,
        policy=policy,
        x=x,
        battery=None,
        charge=None,
        discharge=None,
        stages=(),
        status="heuristic",
        build_seconds=build,
        solve_seconds=seconds,
    )


class Scheduler:
    """Plans one site: call ``plan`` again whenever a car arrives or leaves."""

    def __init__(
        self,
        *,
        site: Site,
        policy: Policy = "lp",
        battery: Battery | None = None,
        fairness: Fairness = "weighted",
        on_overload: OnOverload = "zero",
        time_limit_s: float | None = None,
    ) -> None:
        if policy not in ("lp", "edf", "round_robin"):
            raise Invalid(
                f"policy {policy!r} must be 'lp', 'edf' or 'round_robin'", detail={"field": "policy"}
            )
        if battery is not None and policy != "lp":
            raise Invalid(
                f"a battery is planned by the LP only, not by policy {policy!r}", detail={"field": "battery"}
            )
        self.site = site
        self.policy: Policy = policy
        self.battery = battery
        self.fairness: Fairness = fairness
        self.on_overload: OnOverload = on_overload
        self.time_limit_s = time_limit_s

    def plan(
        self, *, now: datetime, sessions: Sequence[ChargingSession], battery_soc_kwh: float | None = None
    ) -> ChargingPlan:
        """The plan from ``now`` for these sessions (and the battery at ``battery_soc_kwh``, if given)."""
        if self.policy != "lp":
            return _baseline(
                self.policy, now=now, sessions=sessions, site=self.site, on_overload=self.on_overload
            )
        battery = self.battery
        if battery is not None and battery_soc_kwh is not None:
            level = min(max(battery_soc_kwh, battery.min_soc_kwh), battery.capacity_kwh)
            battery = replace(battery, initial_soc_kwh=level)
        return plan(
            now=now,
            sessions=sessions,
            site=self.site,
            battery=battery,
            fairness=self.fairness,
            on_overload=self.on_overload,
            time_limit_s=self.time_limit_s,
        )


def simulate_online(
    *,
    sessions: Sequence[ChargingSession],
    site: Site,
    policy: Policy = "lp",
    battery: Battery | None = None,
    fairness: Fairness = "weighted",
) -> OnlineResult:
    """Replay a trace: plan again at every arrival and departure, knowing only the cars present.

    Between two events, each present car gets exactly what the latest plan gives it; that energy is
    its ``delivered_kwh`` at the next plan.
    """
    scheduler = Scheduler(site=site, policy=policy, battery=battery, fairness=fairness)
    for s in sessions:
        if not isinstance(s, ChargingSession):
            raise Invalid(
                f"sessions must be ChargingSession objects, not {type(s).__name__}",
                detail={"field": "sessions"},
            )
    served = {s.session_id: s.delivered_kwh for s in sessions}
    if len(served) != len(sessions):
        raise Invalid("a session id is given twice", detail={"field": "sessions"})
    events = sorted(
        {max(t, site.start) for s in sessions for t in (s.arrival, s.departure) if t < site.end}
        | ({site.start} if battery is not None else set())
    )
    soc = battery.initial_soc_kwh if battery is not None else None
    replans = 0
    seconds: list[float] = []
    for k, moment in enumerate(events):
        until = events[k + 1] if k + 1 < len(events) else site.end
        present = [
            replace(s, delivered_kwh=served[s.session_id])
            for s in sessions
            if s.arrival <= moment < s.departure
        ]
        if not present and battery is None:
            continue
        started = time.perf_counter()
        current = scheduler.plan(now=moment, sessions=present, battery_soc_kwh=soc)
        seconds.append(time.perf_counter() - started)
        replans += 1
        for t in range(len(current.slot_starts)):
            begin = current.slot_starts[t]
            if begin >= until:
                break
            hours = (min(current.slot_end(t), until) - begin).total_seconds() / 3600.0
            for item in current.sessions:
                served[item.session_id] += item.power_kw[t] * hours
            if battery is not None and current.battery is not None and soc is not None:
                soc = soc_after(
                    battery,
                    soc_kwh=soc,
                    charge_kw=current.battery.charge_kw[t],
                    discharge_kw=current.battery.discharge_kw[t],
                    hours=hours,
                )
    served_list = [served[s.session_id] for s in sessions]
    return OnlineResult(
        policy=policy,
        session_ids=tuple(s.session_id for s in sessions),
        served_kwh=tuple(served_list),
        fraction_served=tuple(
            (v / s.energy_kwh) if s.energy_kwh > 0 else 1.0
            for v, s in zip(served_list, sessions, strict=True)
        ),
        energy_kwh=float(sum(v - s.delivered_kwh for v, s in zip(served_list, sessions, strict=True))),
        replans=replans,
        plan_seconds=tuple(seconds),
        final_soc_kwh=soc,
    )
