"""Day-ahead load forecasts for one series or a thousand: MSTL and AutoETS beside seasonal-naive
baselines, with 80 % and 95 % intervals, and the model in use chosen per series by a backtest.

Pure computation over arrays (no database). The models and their backtest are described in
``zhishe.energy.backtest``. ``forecast`` checks the input (a regular grid of UTC times; a few
gaps filled), backtests every model at the last ``windows`` days (rolling origin, refitted at
each), uses the one with the lowest MASE, rescales each model's intervals to the coverage its
backtest showed, and says which model and why. ``forecast_many`` does the same for many series on
every core, with a lighter backtest. Models are fitted on at most the last ``max_history_days``
(91) days, which keeps a page request for a year of readings as quick as one for three months.
statsforecast and statsmodels are imported on first use, not with this module.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from zhishe.core.errors import Invalid
from zhishe.energy.backtest import (
    BASELINES,
    DEFAULT_MODELS,
    MODELS,
    Backtest,
    Prediction,
    run_backtest,
    run_models,
)

__all__ = [
    "BASELINES",
    "DEFAULT_MODELS",
    "MIN_HISTORY_DAYS",
    "MODELS",
    "SELECT_WINDOWS",
    "Forecast",
    "ModelForecast",
    "backtest",
    "forecast",
    "forecast_many",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MIN_HISTORY_DAYS = 14  # refuse less: the weekly season needs two full weeks
_MAX_MISSING = 0.2  # share of values that may be filled in
_MAX_HORIZON_DAYS = 14
#: A backtest chooses the model only with at least this many windows: shorter ones (every day of
#: the week not yet compared) chose worse than always using MSTL (docs/benchmarks-forecast.md).
SELECT_WINDOWS = 7
_IN_PROCESS_BELOW = 8  # forecast_many runs smaller batches here: worker start-up costs about 2 s
_NS_PER_DAY = 86_400 * 10**9
_NS_PER_MINUTE = 60 * 10**9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ModelForecast:
    """One model's forecast over the horizon."""

    model: str
    mean: FloatArray
    #: level (80, 95) → (lower, upper)
    intervals: Mapping[int, tuple[FloatArray, FloatArray]]

    def to_dict(self) -> dict[str, Any]:
        """The forecast as plain JSON values."""
        return {
            "model": self.model,
            "mean": self.mean.tolist(),
            "intervals": {
                str(level): {"lower": lo.tolist(), "upper": hi.tolist()}
                for level, (lo, hi) in self.intervals.items()
            },
        }


@dataclass(frozen=True)
class Forecast:
    """The forecast of one series by the model in use, with every candidate and the backtest."""

    #: The model in use (chosen by the backtest when ``select``).
    model: str
    #: Which model and why, in one sentence a page can show.
    reason: str
    #: Start of each forecast period (UTC).
    times: tuple[datetime, ...]
    mean: FloatArray
    #: level (80, 95) → (lower, upper)
    intervals: Mapping[int, tuple[FloatArray, FloatArray]]
    #: Every model that produced a forecast, the baselines included.
    candidates: Mapping[str, ModelForecast]
    backtest: Backtest | None
    #: What was done to the input and what went wrong (gaps filled, models that failed).
    notes: tuple[str, ...]
    #: Time between values.
    interval: timedelta
    periods_per_day: int

    @property
    def baselines(self) -> dict[str, ModelForecast]:
        """The seasonal-naive forecasts (one day, one week) computed beside the models."""
        return {name: self.candidates[name] for name in BASELINES if name in self.candidates}

    def to_dict(self) -> dict[str, Any]:
        """The forecast as plain JSON values; times in ISO 8601 with offset."""
        return {
            "model": self.model,
            "reason": self.reason,
            "times": [t.isoformat() for t in self.times],
            "mean": self.mean.tolist(),
            "intervals": {
                str(level): {"lower": lo.tolist(), "upper": hi.tolist()}
                for level, (lo, hi) in self.intervals.items()
            },
            "baselines": {name: f.to_dict() for name, f in self.baselines.items()},
            "models": {name: f.to_dict() for name, f in self.candidates.items() if name not in BASELINES},
            "backtest": self.backtest.to_dict() if self.backtest else None,
            "notes": list(self.notes),
            "interval_minutes": self.interval / timedelta(minutes=1),
        }


def forecast(
    times: Sequence[datetime] | npt.NDArray[np.datetime64],
    values: npt.ArrayLike,
    *,
    horizon: int | None = None,
    levels: Sequence[int] = (80, 95),
    models: Sequence[str] = DEFAULT_MODELS,
    select: bool = True,
    windows: int = 14,
    step: int | None = None,
    max_history_days: int = 91,
) -> Forecast:
    """Forecast the ``horizon`` values (default: one day) after ``times``.

    ``times`` are UTC-aware datetimes or numpy ``datetime64`` values (read as UTC) at a regular
    interval of 5 minutes to 12 hours; ``values`` are floats, ``nan`` or ``None`` where missing.
    With ``select``, every model (and both baselines) is backtested at ``windows`` origins
    ``step`` values apart (default one day) and the one with the lowest MASE is used (with fewer
    than ``SELECT_WINDOWS`` windows the backtest only rescales the intervals); without it, or
    without a backtest, the first of ``models`` that runs. Raises ``Invalid`` for input it cannot
    forecast.
    """
    plan = _plan(
        horizon=horizon,
        levels=levels,
        models=models,
        select=select,
        windows=windows,
        step=step,
        max_history_days=max_history_days,
    )
    return _forecast_series(_checked_horizon(_prepare(times, values), plan), plan)


def backtest(
    times: Sequence[datetime] | npt.NDArray[np.datetime64],
    values: npt.ArrayLike,
    *,
    windows: int = 14,
    step: int | None = None,
    horizon: int | None = None,
    levels: Sequence[int] = (80, 95),
    models: Sequence[str] = DEFAULT_MODELS,
    max_history_days: int = 91,
) -> Backtest:
    """Rolling-origin backtest of ``models`` and both seasonal-naive baselines on one series.

    Origins lie whole ``step``s (default one day) before the end of the history, the latest the
    first whose ``horizon`` fits in it; each model is refitted at each origin on what came before.
    """
    plan = _plan(
        horizon=horizon,
        levels=levels,
        models=models,
        select=True,
        windows=windows,
        step=step,
        max_history_days=max_history_days,
    )
    series = _checked_horizon(_prepare(times, values), plan)
    return _backtest_series(series, plan, _usable_models(series, plan)[0])


def forecast_many(
    series: Mapping[Any, tuple[Any, Any]] | Any,
    *,
    horizon: int | None = None,
    levels: Sequence[int] = (80, 95),
    models: Sequence[str] = DEFAULT_MODELS,
    select: bool = True,
    windows: int = 1,
    step: int | None = None,
    max_history_days: int = 91,
    n_jobs: int | None = None,
    id_column: str = "unique_id",
    time_column: str = "ds",
    value_column: str = "y",
) -> dict[str, Forecast]:
    """Forecast many series, one ``Forecast`` per series id, on ``n_jobs`` processes (default:
    every core).

    ``series`` is a mapping of id → (times, values), or a long pandas or polars frame with one
    row per value (columns ``unique_id``, ``ds``, ``y`` unless named otherwise). Each series gets
    exactly what ``forecast`` does, except that the backtest is lighter by default: one window
    instead of fourteen, on the same day of the week as the day forecast, a week before it
    (``step`` defaults to a week here). One day is too short to choose by, so by default the
    first model asked for (MSTL) is used unless it fails, with its intervals rescaled by that
    day; ``windows=7, step=48`` chooses per series at about four times the time. Every series is
    checked before any is forecast; if one is refused, ``Invalid`` names it and
    ``detail["refused"]`` lists them all (the first hundred).
    """
    plan = _plan(
        horizon=horizon,
        levels=levels,
        models=models,
        select=select,
        windows=windows,
        step=step,
        max_history_days=max_history_days,
        step_days=7,
    )
    prepared: dict[str, _Series] = {}
    refused: dict[str, str] = {}
    for key, (times, values) in _split(series, id_column, time_column, value_column).items():
        try:
            prepared[key] = _checked_horizon(_prepare(times, values), plan)
        except Invalid as exc:
            refused[key] = exc.message
    if refused:
        first = next(iter(refused))
        more = f" ({len(refused) - 1} more series refused)" if len(refused) > 1 else ""
        raise Invalid(
            f"series {first!r}: {refused[first]}{more}", detail={"refused": dict(list(refused.items())[:100])}
        )
    jobs = n_jobs if n_jobs is not None else _cores()
    if jobs < 1:
        raise Invalid(f"n_jobs must be at least 1, got {n_jobs}")
    items = list(prepared.items())
    if jobs == 1 or len(items) < _IN_PROCESS_BELOW:
        return _forecast_chunk(items, plan)
    chunks = [items[i :: jobs * 4] for i in range(min(len(items), jobs * 4))]
    results: dict[str, Forecast] = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=_context()) as pool:
        for part in pool.map(_forecast_chunk, chunks, repeat(plan)):
            results.update(part)
    return {key: results[key] for key in prepared}


# --- the plan: validated settings shared by every series -------------------------------------


@dataclass(frozen=True)
class _Plan:
    models: tuple[str, ...]  # as asked, in order of preference
    horizon: int | None  # None: one day of the series
    levels: tuple[int, ...]
    select: bool
    windows: int
    step: int | None  # None: step_days days
    max_history_days: int
    step_days: int = 1


def _plan(
    *,
    horizon: int | None,
    levels: Sequence[int],
    models: Sequence[str],
    select: bool,
    windows: int,
    step: int | None,
    max_history_days: int,
    step_days: int = 1,
) -> _Plan:
    if isinstance(models, str) or not models:
        raise Invalid(f"models must be a non-empty list of names from {', '.join(MODELS)}")
    for name in models:
        if name not in MODELS:
            raise Invalid(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    if not levels:
        raise Invalid("levels must name at least one interval level, e.g. (80, 95)")
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 99:
            raise Invalid(f"levels must be whole percentages from 1 to 99, got {level!r}")
    if horizon is not None and horizon < 1:
        raise Invalid(f"horizon must be at least 1 value, got {horizon}")
    if windows < 0:
        raise Invalid(f"windows must be 0 or more, got {windows}")
    if step is not None and step < 1:
        raise Invalid(f"step must be at least 1 value, got {step}")
    if max_history_days < MIN_HISTORY_DAYS:
        raise Invalid(f"max_history_days must be at least {MIN_HISTORY_DAYS}, got {max_history_days}")
    return _Plan(
        models=tuple(dict.fromkeys(models)),
        horizon=horizon,
        levels=tuple(sorted(set(levels))),
        select=select,
        windows=windows,
        step=step,
        max_history_days=max_history_days,
        step_days=step_days,
    )


def _checked_horizon(series: _Series, plan: _Plan) -> _Series:
    ppd = series.periods_per_day
    if (plan.horizon or ppd) > _MAX_HORIZON_DAYS * ppd:
        raise Invalid(
            f"horizon must be at most {_MAX_HORIZON_DAYS} days ({_MAX_HORIZON_DAYS * ppd} values), "
            f"got {plan.horizon}"
        )
    return series


# --- input: a regular grid, gaps filled ------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    start: datetime  # time of y[0], UTC
    interval_ns: int
    y: FloatArray  # gaps filled
    observed: BoolArray  # False where a value was filled in
    notes: tuple[str, ...]

    @property
    def periods_per_day(self) -> int:
        return _NS_PER_DAY // self.interval_ns

    @property
    def interval(self) -> timedelta:
        return timedelta(microseconds=self.interval_ns / 1000)

    def time(self, index: int) -> datetime:
        return self.start + index * self.interval


def _prepare(times: Sequence[Any] | npt.NDArray[Any], values: npt.ArrayLike) -> _Series:
    """Check the input, put it on its regular grid and fill the gaps."""
    ns = _to_ns(times)
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"values must be numbers ({exc})") from exc
    if v.ndim != 1:
        raise Invalid(f"values must be one-dimensional, got shape {v.shape}")
    if ns.size != v.size:
        raise Invalid(f"times and values differ in length: {ns.size} and {v.size}")
    if ns.size < 2:
        raise Invalid(f"needs at least {MIN_HISTORY_DAYS} days of history, got {ns.size} value(s)")
    steps = np.diff(ns)
    back = np.flatnonzero(steps <= 0)
    if back.size:
        i = int(back[0]) + 1
        how = "repeats" if steps[i - 1] == 0 else "comes before"
        raise Invalid(f"times must increase: times[{i}] ({_iso(ns[i])}) {how} times[{i - 1}]")
    lengths, counts = np.unique(steps, return_counts=True)
    interval = int(lengths[np.argmax(counts)])
    if interval < 5 * _NS_PER_MINUTE or _NS_PER_DAY % interval or _NS_PER_DAY // interval < 2:
        raise Invalid(
            f"the values are {_span(interval)} apart; the interval must be 5 minutes to 12 hours "
            "and divide a day into whole periods (e.g. 15 or 30 minutes, 1 hour)"
        )
    off = np.flatnonzero(steps % interval)
    if off.size:
        i = int(off[0]) + 1
        raise Invalid(
            f"irregular timestamps: times[{i}] ({_iso(ns[i])}) is {_span(int(steps[i - 1]))} after the "
            f"one before, not a whole number of {_span(interval)} intervals"
        )
    ppd = _NS_PER_DAY // interval
    index = (ns - ns[0]) // interval
    n = int(index[-1]) + 1
    finite = np.isfinite(v)
    if not finite.any():
        raise Invalid("every value is missing (NaN): nothing to forecast from")
    given = index[finite]
    first, last = int(given[0]), int(given[-1])
    span = last - first + 1
    missing = span - int(finite.sum())
    if missing > _MAX_MISSING * span:
        raise Invalid(
            f"{missing / span:.0%} of the values are missing ({missing:,} of {span:,} {_span(interval)} "
            f"periods); at most {_MAX_MISSING:.0%} can be filled in"
        )
    if span < MIN_HISTORY_DAYS * ppd:
        raise Invalid(f"needs at least {MIN_HISTORY_DAYS} days of history, got {span / ppd:.1f}")
    notes: list[str] = []
    if first > 0:
        notes.append(f"the first {first} value(s) were missing and were left out")
    if last < n - 1:
        notes.append(
            f"the last {n - 1 - last} value(s) were missing; the forecast starts after the last "
            f"value given, {_iso(ns[0] + (last + 1) * interval)}"
        )
    y = np.full(span, np.nan)
    y[given - first] = v[finite]
    observed = np.isfinite(y)
    if missing:
        holes = np.flatnonzero(~observed)
        y[holes] = np.interp(holes, np.flatnonzero(observed), y[observed])
        runs = np.split(holes, np.flatnonzero(np.diff(holes) > 1) + 1)
        longest = max(len(run) for run in runs)
        note = (
            f"filled {missing} missing value(s) in {len(runs)} gap(s) by linear interpolation "
            f"(longest {_span(longest * interval)})"
        )
        if longest >= ppd:
            note += "; a gap of a day or more loses its daily cycle"
        notes.append(note)
    start = _EPOCH + timedelta(microseconds=(int(ns[0]) + first * interval) // 1000)
    return _Series(start=start, interval_ns=interval, y=y, observed=observed, notes=tuple(notes))


def _to_ns(times: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Nanoseconds since 1970-01-01 UTC of each time."""
    if isinstance(times, np.ndarray) and times.dtype.kind == "M":
        ns = times.astype("datetime64[ns]").astype(np.int64)
        nat = np.flatnonzero(np.isnat(times))
        if nat.size:
            raise Invalid(f"times[{int(nat[0])}] is missing (NaT)")
        return ns
    out = np.empty(len(times), dtype=np.int64)
    for i, t in enumerate(times):
        if isinstance(t, np.datetime64):
            if np.isnat(t):
                raise Invalid(f"times[{i}] is missing (NaT)")
            out[i] = t.astype("datetime64[ns]").astype(np.int64)
        elif isinstance(t, datetime):
            if t.tzinfo is None or t.utcoffset() is None:
                raise Invalid(
                    f"times[{i}] ({t.isoformat()}) has no time zone; give UTC-aware datetimes "
                    "or numpy datetime64 values (read as UTC)"
                )
            out[i] = (t - _EPOCH) // timedelta(microseconds=1) * 1000
        else:
            raise Invalid(f"times[{i}] is a {type(t).__name__}, not a datetime")
    return out


def _split(
    series: Mapping[Any, tuple[Any, Any]] | Any, id_column: str, time_column: str, value_column: str
) -> dict[str, tuple[Any, Any]]:
    """id → (times, values) from a mapping or a long pandas or polars frame."""
    if isinstance(series, Mapping):
        out: dict[str, tuple[Any, Any]] = {}
        for key, pair in series.items():
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise Invalid(f"series {key!r}: give a (times, values) pair")
            out[str(key)] = (pair[0], pair[1])
        return out
    library = type(series).__module__.split(".")[0]
    if library not in ("pandas", "polars"):
        raise Invalid("series must be a mapping of id → (times, values) or a pandas or polars frame")
    for column in (id_column, time_column, value_column):
        if column not in series.columns:
            raise Invalid(f"the frame has no column {column!r}")
    ids = np.asarray(series[id_column].to_numpy()).astype(str)
    stamps = _frame_times(series[time_column], library)
    column = series[value_column]
    values = (
        column.to_numpy(dtype=np.float64, na_value=np.nan) if library == "pandas" else column.to_numpy()
    ).astype(np.float64)
    order = np.lexsort((stamps.astype(np.int64), ids))
    ids, stamps, values = ids[order], stamps[order], values[order]
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    return {
        str(part_ids[0]): (part_times, part_values)
        for part_ids, part_times, part_values in zip(
            np.split(ids, cuts), np.split(stamps, cuts), np.split(values, cuts), strict=True
        )
        if part_ids.size
    }


def _frame_times(column: Any, library: str) -> npt.NDArray[np.datetime64]:
    """A frame's time column as datetime64[ns] in UTC (naive columns are read as UTC)."""
    if library == "pandas":
        dtype = column.dtype
        if getattr(dtype, "tz", None) is not None:
            column = column.dt.tz_convert("UTC").dt.tz_localize(None)
        elif getattr(dtype, "kind", "") != "M":
            return np.asarray(_to_ns(list(column)), dtype="datetime64[ns]")
        return np.asarray(column.to_numpy(), dtype="datetime64[ns]")
    if getattr(column.dtype, "time_zone", None):
        column = column.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return np.asarray(column.to_numpy(), dtype="datetime64[ns]")


def _usable_models(series: _Series, plan: _Plan) -> tuple[tuple[str, ...], list[str]]:
    """The models to run on this series (those asked for and both baselines), with notes."""
    names = (*plan.models, *(b for b in BASELINES if b not in plan.models))
    notes: list[str] = []
    if "mstl" in names and not _positive(series):
        notes.append("mstl works on the values themselves, not their logarithm: some are zero or negative")
    return names, notes


def _positive(series: _Series) -> bool:
    return bool((series.y > 0).all())


# --- backtest, selection and the forecast of one series -----------------------------------


def _backtest_series(series: _Series, plan: _Plan, names: tuple[str, ...]) -> Backtest:
    ppd = series.periods_per_day
    return run_backtest(
        series.y,
        series.observed,
        names=names,
        horizon=plan.horizon or ppd,
        step=plan.step or plan.step_days * ppd,
        windows=plan.windows,
        levels=plan.levels,
        ppd=ppd,
        log=_positive(series),
        max_points=plan.max_history_days * ppd,
        start=series.start,
        interval=series.interval,
    )


def _forecast_series(series: _Series, plan: _Plan) -> Forecast:
    ppd = series.periods_per_day
    horizon = plan.horizon or ppd
    names, model_notes = _usable_models(series, plan)
    notes = [*series.notes, *model_notes]
    result = None
    if plan.select and plan.windows > 0:
        result = _backtest_series(series, plan, names)
        notes.extend(result.notes)
    max_points = plan.max_history_days * ppd
    if series.y.size > max_points:
        notes.append(
            f"the models were fitted on the last {plan.max_history_days} of {series.y.size / ppd:.1f} days"
        )
    train = series.y[-max_points:]
    if np.ptp(train) == 0:
        notes.append("the series is constant")
    outputs = run_models(names, train, h=horizon, levels=plan.levels, ppd=ppd, log=_positive(series))
    for name, out in outputs.items():
        if isinstance(out, str):
            notes.append(f"{name} failed on the full history: {out}")
    ran = {name: out for name, out in outputs.items() if isinstance(out, Prediction)}
    if not ran:  # the baselines need only a week of values; this is not expected
        raise Invalid("no model could forecast this series: " + "; ".join(str(outputs[n]) for n in names))
    chosen, reason = _choose(plan, result, list(ran), span=_span(horizon * series.interval_ns))
    floor = 0.0 if series.y.min() >= 0 else -math.inf
    candidates: dict[str, ModelForecast] = {}
    for name, out in ran.items():
        factors = result.scores[name].calibration if result is not None and name in result.scores else {}
        candidates[name] = ModelForecast(name, out.mean, _intervals(out, factors, plan.levels, floor=floor))
    notes.append(_interval_note(chosen, result, plan.levels))
    times = tuple(series.time(series.y.size + i) for i in range(horizon))
    return Forecast(
        model=chosen,
        reason=reason,
        times=times,
        mean=candidates[chosen].mean,
        intervals=candidates[chosen].intervals,
        candidates=candidates,
        backtest=result,
        notes=tuple(notes),
        interval=series.interval,
        periods_per_day=ppd,
    )


def _intervals(
    out: Prediction, factors: Mapping[int, float], levels: tuple[int, ...], *, floor: float
) -> dict[int, tuple[FloatArray, FloatArray]]:
    """The model's intervals, their half-widths times the backtest's calibration factor where there
    is one, nested (each level inside the next), around the mean and not below ``floor``."""
    intervals: dict[int, tuple[FloatArray, FloatArray]] = {}
    inner_lo, inner_hi = out.mean, out.mean
    for level in levels:  # ascending
        lo, hi = out.lower[level], out.upper[level]
        factor = factors.get(level, math.nan)
        if math.isfinite(factor):
            lo = out.mean - factor * (out.mean - lo)
            hi = out.mean + factor * (hi - out.mean)
        lo = np.maximum(np.minimum(lo, inner_lo), min(floor, float(out.mean.min())))
        hi = np.maximum(hi, inner_hi)
        intervals[level] = (lo, hi)
        inner_lo, inner_hi = lo, hi
    return intervals


def _interval_note(chosen: str, result: Backtest | None, levels: tuple[int, ...]) -> str:
    score = result.scores.get(chosen) if result is not None else None
    factors = score.calibration if score is not None else {}
    if not factors or not all(math.isfinite(factors.get(level, math.nan)) for level in levels):
        return f"the intervals are {chosen}'s own: no backtest could calibrate them"
    rescaled = ", ".join(f"{level} % ×{factors[level]:.2f}" for level in levels)
    return (
        f"the intervals are {chosen}'s own with their widths rescaled ({rescaled}) to cover that share "
        "of the backtest's values"
    )


def _choose(plan: _Plan, result: Backtest | None, ran: list[str], *, span: str) -> tuple[str, str]:
    """The model in use and the sentence that says why."""
    wanted = [name for name in plan.models if name in ran]
    first = wanted[0] if wanted else next(name for name in BASELINES if name in ran)
    usable = [name for name in result.ranking if name in ran] if result is not None else []
    if result is not None and usable:
        best = usable[0]
        tested = f"a backtest of {result.windows} forecast(s) of {span}"
        if result.windows >= SELECT_WINDOWS:
            compare = ", ".join(
                f"{name} {result.scores[name].mase:.3f}" for name in result.scores if name != best
            )
            reason = (
                f"{best} has the lowest MASE ({result.scores[best].mase:.3f}) in {tested} (others: {compare})"
            )
            if best != result.ranking[0]:
                reason += f"; {result.ranking[0]} ranked first but failed on the full history"
            return best, reason
        kept = next((name for name in wanted if name in usable), best)
        reason = (
            f"{kept}: the first model asked for that ran at every origin; {tested} is too short to choose by "
            f"(at least {SELECT_WINDOWS} days are needed), so it only rescaled the intervals"
        )
        if best != kept:
            reason += (
                f" (there {best} had the lower MASE, {result.scores[best].mase:.3f} against "
                f"{result.scores[kept].mase:.3f})"
            )
        return kept, reason
    if not plan.select or plan.windows == 0:
        why = "no backtest was asked for"
    elif result is not None and result.windows == 0:
        why = "the history is too short for a backtest"
    else:
        why = "no model ran at every backtest origin"
    if plan.models[0] != first:
        return first, f"{first}: {why}, and {plan.models[0]} could not forecast this series"
    return first, f"{first}: {why}, so the first model asked for is used"


def _forecast_chunk(items: list[tuple[str, _Series]], plan: _Plan) -> dict[str, Forecast]:
    return {key: _forecast_series(series, plan) for key, series in items}


# --- small helpers -------------------------------------------------------------------------


def _context() -> multiprocessing.context.BaseContext:
    """Fresh worker processes (never a fork of a threaded server), started from a server that has
    imported the models once, so that later batches start at once; spawn where there is none."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["zhishe.energy.forecast", "statsforecast.models", "statsmodels.tsa.seasonal"]
    )
    return context


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _iso(ns: int | np.integer[Any]) -> str:
    return (_EPOCH + timedelta(microseconds=int(ns) // 1000)).isoformat()


def _span(ns: int) -> str:
    """A duration in words: '30 minutes', '1 day', '3.5 hours'."""
    minutes = ns / _NS_PER_MINUTE
    for unit, size in (("day", 1440), ("hour", 60), ("minute", 1)):
        if minutes >= size:
            amount = minutes / size
            text = f"{amount:g}" if amount == int(amount) else f"{amount:.1f}"
            return f"{text} {unit}{'' if text == '1' else 's'}"
    return f"{ns / 1e9:g} seconds"
