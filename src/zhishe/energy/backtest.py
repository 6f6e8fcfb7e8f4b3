"""The candidate models of a load forecast, their rolling-origin backtest, and its scores.

The models, all from statsforecast or built on it:

- ``mstl``: MSTL (Bandara, Hyndman and Bergmeir 2021), as ``statsforecast.mstl`` computes it: STL
  splits the series into a daily and a weekly seasonal component (daily only under two weeks of
  history) and the rest; the seasonal components repeat their last cycle and the rest is forecast
  by statsforecast's ``AutoETS(model="ANN")``, whose intervals the forecast carries. It works on
  the logarithm of the series when every value is positive, since a load's daily swing grows
  with its level (Guerrero's method, with a daily season, picks a Box-Cox λ of 0 for nearly every
  load series measured), and on the series itself otherwise. STL runs with R's settings (two
  inner passes, smoothers evaluated every tenth of their window), which forecast as well as
  statsforecast's own ``MSTL`` class (statsmodels' defaults) at a small fraction of its time
  (docs/benchmarks-forecast.md).
- ``mstl_additive`` (not in the defaults): the same, always on the series itself.
- ``autoets``: statsforecast's ``AutoETS``, choosing among additive and multiplicative errors,
  no or an additive trend, and seasons; damped trends are left out, as they took three quarters
  of its fitting time. Its seasonal models handle at most 24 periods per season, so for
  half-hourly or 15-minute data it is non-seasonal (model ``ZZN``, fitted on the last 7 days)
  and cannot follow the daily cycle; for hourly or coarser data it is seasonal by day (model
  ``ZZZ``, fitted on the last 14 days).
- ``snaive_day`` and ``snaive_week``: statsforecast's ``SeasonalNaive`` with m = one day and one
  week, always computed, as the baselines every other model must beat.

A backtest refits each model at several origins in the recent past, forecasts the horizon after
each, and compares the forecasts with what happened:

- **MASE** is the mean absolute error divided by the *scale*: the mean absolute difference between
  values one season apart (``m`` periods, one day for load series) in the history before the
  first origin, i.e. the in-sample error of the one-day seasonal naive forecast. A MASE below 1
  beats that naive forecast's in-sample accuracy; two models on the same series compare directly.
- **Coverage** at level 80 is the share of actual values inside the model's own 80 % interval.
- **Calibration**: each backtest error is divided by the half-width of the model's interval on
  its side of the forecast; the factor for level 80 is the conformal 80 % quantile of those
  ratios. Multiplying the interval's half-widths by it gives an interval that would have covered
  80 % of the backtest's values (split-conformal prediction with the backtest as calibration set).
- The **ranking** orders the models that ran at every origin by mean absolute error (the same
  order as MASE, and still defined when the scale is zero, as for a constant series); ties go to
  the simpler model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from zhishe.core.errors import Invalid

__all__ = [
    "BASELINES",
    "DEFAULT_MODELS",
    "MIN_TRAIN_DAYS",
    "MODELS",
    "SIMPLICITY",
    "Backtest",
    "ModelScore",
    "Prediction",
    "backtest_origins",
    "conformal_factor",
    "coverage",
    "mase",
    "normalised_errors",
    "rank",
    "run_backtest",
    "run_models",
    "scaled",
    "seasonal_scale",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MODELS = ("mstl", "mstl_additive", "autoets", "snaive_day", "snaive_week")
BASELINES = ("snaive_day", "snaive_week")
DEFAULT_MODELS = ("mstl", "autoets", "snaive_day", "snaive_week")
#: Days a backtest origin needs before it (the weekly naive needs more than a week).
MIN_TRAIN_DAYS = 8

#: The order in which tied models are preferred: the simplest first.
SIMPLICITY = ("snaive_day", "snaive_week", "autoets", "mstl_additive", "mstl")


@dataclass(frozen=True)
class ModelScore:
    """How one model did in a backtest."""

    model: str
    #: Mean absolute scaled error over every scored value (``nan`` when the scale is zero).
    mase: float
    #: Mean absolute error, in the series' unit.
    mae: float
    #: Share of actual values inside the model's own interval, per level (80, 95).
    coverage: Mapping[int, float]
    #: Origins at which the model ran and was scored.
    windows: int
    #: Origins at which the model failed; a model that failed anywhere is not chosen.
    failed: int = 0
    #: Why it failed (the last failure), if it did.
    failure: str | None = None
    #: Per level, the factor on the interval's half-widths that makes it cover the backtest's
    #: values at that level (``nan`` when it cannot be computed).
    calibration: Mapping[int, float] = field(default_factory=dict)
    #: Mean absolute error at each origin, oldest first (``nan`` where it failed).
    window_mae: tuple[float, ...] = ()

    @property
    def coverage80(self) -> float:
        """Share of actuals inside the 80 % interval (``nan`` if 80 was not asked for)."""
        return self.coverage.get(80, math.nan)

    @property
    def coverage95(self) -> float:
        """Share of actuals inside the 95 % interval (``nan`` if 95 was not asked for)."""
        return self.coverage.get(95, math.nan)

    def to_dict(self) -> dict[str, Any]:
        """The score as plain JSON values (``None`` for an undefined number)."""
        return {
            "model": self.model,
            "mase": _json_number(self.mase),
            "mae": _json_number(self.mae),
            "coverage": {str(level): _json_number(share) for level, share in self.coverage.items()},
            "windows": self.windows,
            "failed": self.failed,
            "failure": self.failure,
            "calibration": {str(level): _json_number(k) for level, k in self.calibration.items()},
            "window_mae": [_json_number(x) for x in self.window_mae],
        }


@dataclass(frozen=True)
class Backtest:
    """A rolling-origin backtest of several models on one series."""

    #: Values forecast after each origin.
    horizon: int
    #: Values between consecutive origins.
    step: int
    #: The season of the MASE scale (periods per day).
    season: int
    #: The MASE scale: mean absolute one-day seasonal difference before the first origin.
    scale: float
    #: The time of the first forecast value after each origin (UTC), oldest first.
    origins: tuple[datetime, ...]
    #: Each model's score, by model name.
    scores: Mapping[str, ModelScore]
    #: Models that ran at every origin, best first.
    ranking: tuple[str, ...]
    #: What the reader should know (fewer windows than asked for, models that failed).
    notes: tuple[str, ...] = field(default=())

    @property
    def windows(self) -> int:
        """Number of origins."""
        return len(self.origins)

    @property
    def best(self) -> str | None:
        """The model with the lowest error among those that ran at every origin."""
        return self.ranking[0] if self.ranking else None

    @property
    def naive(self) -> dict[str, float]:
        """MASE of the seasonal-naive baselines (one day, one week), for comparison."""
        return {name: self.scores[name].mase for name in BASELINES if name in self.scores}

    def to_dict(self) -> dict[str, Any]:
        """The backtest as plain JSON values; times in ISO 8601 with offset."""
        return {
            "horizon": self.horizon,
            "step": self.step,
            "season": self.season,
            "scale": _json_number(self.scale),
            "origins": [origin.isoformat() for origin in self.origins],
            "scores": {name: score.to_dict() for name, score in self.scores.items()},
            "ranking": list(self.ranking),
            "best": self.best,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Prediction:
    """One model's forecast of the horizon: the mean and the interval bounds per level."""

    mean: FloatArray
    lower: Mapping[int, FloatArray]
    upper: Mapping[int, FloatArray]


def run_models(
    names: Iterable[str], y: FloatArray, *, h: int, levels: tuple[int, ...], ppd: int, log: bool
) -> dict[str, Prediction | str]:
    """Each model's forecast of the ``h`` values after ``y``, or why it failed (a model that raises,
    or returns missing or infinite values, fails). ``log``: ``mstl`` may work on logarithms."""
    out: dict[str, Prediction | str] = {}
    for name in names:
        try:
            with np.errstate(all="ignore"):
                result = _run_model(name, y, h=h, levels=levels, ppd=ppd, log=log)
            out[name] = _checked(result, h=h, levels=levels)
        except Exception as exc:  # any failure of a model falls back to another
            out[name] = f"{type(exc).__name__}: {exc}"[:200]
    return out


def _run_model(
    name: str, y: FloatArray, *, h: int, levels: tuple[int, ...], ppd: int, log: bool
) -> dict[str, Any]:
    from statsforecast.models import AutoETS, SeasonalNaive

    level = list(levels)
    if name == "snaive_day":
        return dict(SeasonalNaive(season_length=ppd).forecast(y=y, h=h, level=level))
    if name == "snaive_week":
        return dict(SeasonalNaive(season_length=7 * ppd).forecast(y=y, h=h, level=level))
    if name == "autoets":  # without damped trends, which took three quarters of the time
        if ppd <= 24:  # statsforecast's seasonal ETS stops at 24 periods per season
            ets, days = AutoETS(season_length=ppd, model="ZZZ", damped=False), 14
        else:
            ets, days = AutoETS(season_length=1, model="ZZN", damped=False), 7
        return dict(ets.forecast(y=y[-days * ppd :], h=h, level=level))
    if name in ("mstl", "mstl_additive"):
        periods = [ppd, 7 * ppd] if y.size >= 14 * ppd else [ppd]
        if name == "mstl" and log:
            return {
                key: np.exp(value) for key, value in _mstl(np.log(y), periods, h=h, levels=levels).items()
            }
        return _mstl(y, periods, h=h, levels=levels)
    raise ValueError(f"unknown model {name!r}")


def _mstl(y: FloatArray, periods: list[int], *, h: int, levels: tuple[int, ...]) -> dict[str, FloatArray]:
    """MSTL: seasonal components repeat their last cycle; the rest is forecast by AutoETS."""
    from statsforecast.models import AutoETS

    seasonals, adjusted = _decompose(y, periods)
    future = np.zeros(h)
    for component, period in zip(seasonals, periods, strict=True):
        future += np.resize(component[-period:], h)
    result = AutoETS(model="ANN").forecast(y=adjusted, h=h, level=list(levels))
    return {key: np.asarray(value) + future for key, value in result.items()}


def _decompose(y: FloatArray, periods: list[int]) -> tuple[list[FloatArray], FloatArray]:
    """``statsforecast.mstl.mstl``'s decomposition with STL at R's settings: returns the seasonal
    components (shortest period first) and the seasonally adjusted series (trend + remainder)."""
    from statsmodels.tsa.seasonal import STL

    seasonals = [np.zeros_like(y) for _ in periods]
    adjusted = y.copy()
    for _ in range(2 if len(periods) > 1 else 1):
        for i, period in enumerate(periods):
            adjusted = adjusted + seasonals[i]
            seasonal = 7 + 4 * (i + 1)  # R's and statsforecast's seasonal windows: 11, 15, ...
            trend = _odd(1.5 * period / (1 - 1.5 / seasonal))  # statsmodels' and R's default
            low_pass = _odd(period)
            fit = STL(
                adjusted,
                period=period,
                seasonal=seasonal,
                seasonal_deg=0,
                seasonal_jump=math.ceil(seasonal / 10),
                trend_jump=math.ceil(trend / 10),
                low_pass_jump=math.ceil(low_pass / 10),
            ).fit(inner_iter=2)
            seasonals[i] = np.asarray(fit.seasonal, dtype=np.float64)
            adjusted = adjusted - seasonals[i]
    return seasonals, adjusted


def _odd(x: float) -> int:
    n = math.ceil(x)
    return n if n % 2 else n + 1


def _checked(result: Mapping[str, Any], *, h: int, levels: tuple[int, ...]) -> Prediction:
    mean = np.asarray(result["mean"], dtype=np.float64)
    lower = {level: np.asarray(result[f"lo-{level}"], dtype=np.float64) for level in levels}
    upper = {level: np.asarray(result[f"hi-{level}"], dtype=np.float64) for level in levels}
    for array in (mean, *lower.values(), *upper.values()):
        if array.shape != (h,) or not np.isfinite(array).all():
            raise ValueError("the model returned missing or infinite values")
    return Prediction(mean=mean, lower=lower, upper=upper)


def run_backtest(
    y: FloatArray,
    observed: BoolArray,
    *,
    names: Sequence[str],
    horizon: int,
    step: int,
    windows: int,
    levels: tuple[int, ...],
    ppd: int,
    log: bool,
    max_points: int,
    start: datetime,
    interval: timedelta,
) -> Backtest:
    """Backtest ``names`` on ``y`` (values at ``start + i * interval``; ``observed`` is False where
    a value was filled in, and such values are not scored): refit every model at each origin on at
    most ``max_points`` values before it and score its forecast of the ``horizon`` after it."""
    origins = backtest_origins(
        n=y.size, horizon=horizon, step=step, windows=windows, min_train=MIN_TRAIN_DAYS * ppd
    )
    notes: list[str] = []
    if len(origins) < windows:
        notes.append(f"the history allows {len(origins)} of the {windows} backtest windows asked for")
    if not origins:
        return Backtest(horizon, step, ppd, math.nan, (), {}, (), tuple(notes))
    scale = seasonal_scale(y[: origins[0]], ppd, observed=observed[: origins[0]])
    errors: dict[str, list[FloatArray]] = {name: [] for name in names}
    inside: dict[str, dict[int, list[BoolArray]]] = {name: {lv: [] for lv in levels} for name in names}
    ratios: dict[str, dict[int, list[FloatArray]]] = {name: {lv: [] for lv in levels} for name in names}
    failures: dict[str, list[str]] = {name: [] for name in names}
    by_window: dict[str, list[float]] = {name: [] for name in names}
    for origin in origins:
        train = y[max(0, origin - max_points) : origin]
        actual = y[origin : origin + horizon]
        seen = observed[origin : origin + horizon]
        for name, out in run_models(names, train, h=horizon, levels=levels, ppd=ppd, log=log).items():
            if isinstance(out, str):
                failures[name].append(out)
                by_window[name].append(math.nan)
                continue
            errors[name].append(np.abs(actual - out.mean)[seen])
            by_window[name].append(float(errors[name][-1].mean()) if seen.any() else math.nan)
            for level in levels:
                hit = (actual >= out.lower[level]) & (actual <= out.upper[level])
                inside[name][level].append(hit[seen])
                ratio = normalised_errors(actual, out.mean, out.lower[level], out.upper[level])
                ratios[name][level].append(ratio[seen])
    scores: dict[str, ModelScore] = {}
    for name in names:
        scored = np.concatenate(errors[name]) if errors[name] else np.empty(0)
        mae = float(scored.mean()) if scored.size else math.nan
        scores[name] = ModelScore(
            model=name,
            mase=scaled(mae, scale),
            mae=mae,
            coverage={
                level: float(np.concatenate(hits).mean()) if scored.size else math.nan
                for level, hits in inside[name].items()
            },
            windows=len(errors[name]),
            failed=len(failures[name]),
            failure=failures[name][-1] if failures[name] else None,
            window_mae=tuple(by_window[name]),
            calibration={
                level: conformal_factor(np.concatenate(parts) if parts else np.empty(0), level)
                for level, parts in ratios[name].items()
            },
        )
        if failures[name]:
            notes.append(f"{name} failed at {len(failures[name])} backtest origin(s): {failures[name][-1]}")
    origin_times = tuple(start + o * interval for o in origins)
    return Backtest(horizon, step, ppd, scale, origin_times, scores, rank(scores), tuple(notes))


def seasonal_scale(insample: npt.ArrayLike, m: int, *, observed: npt.ArrayLike | None = None) -> float:
    """Mean absolute difference between values ``m`` periods apart in ``insample``.

    With ``observed`` (a boolean mask), only pairs of two observed values count, so values that
    were filled in do not shrink the scale.
    """
    x = np.asarray(insample, dtype=np.float64)
    if m < 1:
        raise Invalid(f"the season m must be at least 1, got {m}")
    if x.size <= m:
        raise Invalid(f"the in-sample series needs more than m = {m} values for the MASE scale, got {x.size}")
    diffs = np.abs(x[m:] - x[:-m])
    keep = np.isfinite(diffs)
    if observed is not None:
        seen = np.asarray(observed, dtype=bool)
        keep &= seen[m:] & seen[:-m]
    if not keep.any():
        return math.nan
    return float(diffs[keep].mean())


def mase(actual: npt.ArrayLike, predicted: npt.ArrayLike, *, insample: npt.ArrayLike, m: int) -> float:
    """Mean absolute scaled error of ``predicted`` against ``actual``.

    The scale is the in-sample MAE of the seasonal naive forecast with season ``m`` (for load
    series, ``m`` = periods per day: 48 for half-hourly values). Missing actual values are left
    out. Returns ``nan`` when the scale is zero (a constant history) and the error is not.
    """
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if a.shape != p.shape:
        raise Invalid(f"actual and predicted differ in length: {a.size} and {p.size} values")
    keep = np.isfinite(a)
    if not keep.any():
        raise Invalid("every actual value is missing")
    return scaled(float(np.abs(a[keep] - p[keep]).mean()), seasonal_scale(insample, m))


def scaled(mae: float, scale: float) -> float:
    """``mae / scale``: 0 when both are zero, ``nan`` when only the scale is (or it is unknown)."""
    if scale > 0:
        return mae / scale
    return 0.0 if mae == 0 else math.nan


def coverage(actual: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike) -> float:
    """Share of the (non-missing) actual values inside ``[lower, upper]``."""
    a = np.asarray(actual, dtype=np.float64)
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    keep = np.isfinite(a)
    if not keep.any():
        raise Invalid("every actual value is missing")
    return float(((a[keep] >= lo[keep]) & (a[keep] <= hi[keep])).mean())


def normalised_errors(
    actual: npt.ArrayLike, mean: npt.ArrayLike, lower: npt.ArrayLike, upper: npt.ArrayLike
) -> FloatArray:
    """Each error divided by the interval's half-width on its side of the forecast (0 for an exact
    forecast, ``inf`` for a miss by an interval of zero width)."""
    a = np.asarray(actual, dtype=np.float64)
    m = np.asarray(mean, dtype=np.float64)
    width = np.where(a >= m, np.asarray(upper, dtype=np.float64) - m, m - np.asarray(lower, dtype=np.float64))
    error = np.abs(a - m)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(error == 0, 0.0, error / np.maximum(width, 0.0))
    return np.asarray(ratio, dtype=np.float64)


def conformal_factor(ratios: npt.ArrayLike, level: int) -> float:
    """The conformal ``level`` % quantile of normalised errors: the ⌈(n + 1)·level/100⌉-th smallest.

    ``nan`` when there are too few ratios for that rank or the rank falls on an infinite one.
    """
    r = np.sort(np.asarray(ratios, dtype=np.float64))
    rank = math.ceil((r.size + 1) * level / 100)
    if r.size == 0 or rank > r.size:
        return math.nan
    factor = float(r[rank - 1])
    return factor if math.isfinite(factor) else math.nan


def backtest_origins(*, n: int, horizon: int, step: int, windows: int, min_train: int) -> list[int]:
    """Origins (indices of the first forecast value) of up to ``windows`` backtest windows.

    The origins lie whole ``step``s before the end of the history, the latest the first whose
    window fits in it: with a step of one day, the windows are the last days of the history; with
    a step of a week, they fall on the same day of the week as the day after it. Each leaves at
    least ``min_train`` values to fit on. Oldest first; fewer when the history is short.
    """
    first = math.ceil(horizon / step)
    origins = [n - k * step for k in range(first, first + windows)]
    return sorted(o for o in origins if o >= min_train)


def rank(scores: Mapping[str, ModelScore], *, order: Sequence[str] = SIMPLICITY) -> tuple[str, ...]:
    """Models that ran at every origin, lowest mean absolute error first; ties go to the simpler."""
    eligible = [s for s in scores.values() if s.failed == 0 and s.windows > 0 and math.isfinite(s.mae)]

    def key(score: ModelScore) -> tuple[float, int]:
        place = order.index(score.model) if score.model in order else len(order)
        return (float(f"{score.mae:.9g}"), place)

    return tuple(s.model for s in sorted(eligible, key=key))


def _json_number(x: float) -> float | None:
    return x if math.isfinite(x) else None
