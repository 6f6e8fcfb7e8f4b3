"""Day-ahead forecasts: accuracy on real demand, intervals, selection by backtest, refusals, batches."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest

from zhishe.core.errors import Invalid
from zhishe.demo.taylor import read_taylor
from zhishe.energy.backtest import Prediction, mase, run_models, seasonal_scale
from zhishe.energy.forecast import MODELS, backtest, forecast, forecast_many

START = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
HALF_HOUR = timedelta(minutes=30)


def grid(n: int, start: datetime = START, step: timedelta = HALF_HOUR) -> list[datetime]:
    return [start + i * step for i in range(n)]


def load(days: int, *, noise: float = 0.2, weekly: bool = True, seed: int = 0) -> np.ndarray:
    """A half-hourly load: a daily cycle, a weekend bump, Gaussian noise."""
    t = np.arange(days * 48)
    y = 5 + 2 * np.sin(2 * np.pi * t / 48) + np.cos(4 * np.pi * t / 48)
    if weekly:
        y += 1.5 * ((t // 48) % 7 >= 5)
    return y + np.random.default_rng(seed).normal(0, noise, t.size)


@pytest.fixture(scope="module")
def taylor() -> tuple[list[datetime], np.ndarray]:
    rows = read_taylor()
    return [t for t, _ in rows], np.array([v for _, v in rows])


def test_mase_reproduces_the_weekly_naive_score_on_england_and_wales(taylor):
    _, y = taylor
    train, held = y[:-672], y[-672:]
    # day-ahead: each held-out half hour forecast by the value one week before it
    assert mase(held, y[-672 - 336 : -336], insample=train, m=48) == pytest.approx(0.277, abs=5e-4)
    # one forecast of all 14 days from the end of the training days: the last week, twice
    assert mase(held, np.tile(train[-336:], 2), insample=train, m=48) == pytest.approx(0.406, abs=5e-4)


def test_mstl_beats_the_seasonal_naive_on_a_held_out_fortnight_of_england_and_wales(taylor):
    times, y = taylor
    train, held = y[:-672], y[-672:]
    result = forecast(times[:-672], train, horizon=672, models=("mstl",), select=False)
    assert result.model == "mstl"
    assert result.times[0] == times[-672] and result.times[-1] == times[-1]
    ours = mase(held, result.mean, insample=train, m=48)
    week = mase(held, result.baselines["snaive_week"].mean, insample=train, m=48)
    day = mase(held, result.baselines["snaive_day"].mean, insample=train, m=48)
    assert week == pytest.approx(0.406, abs=5e-4)
    assert ours < 0.21
    assert ours < 0.75 * week and ours < day


def test_intervals_are_ordered_and_the_95_interval_is_wider_than_the_80():
    y = load(21)
    result = forecast(grid(y.size), y, models=MODELS, windows=2)
    assert set(result.candidates) == set(MODELS)
    for candidate in result.candidates.values():
        lo80, hi80 = candidate.intervals[80]
        lo95, hi95 = candidate.intervals[95]
        assert np.all(lo95 <= lo80) and np.all(lo80 <= candidate.mean), candidate.model
        assert np.all(candidate.mean <= hi80) and np.all(hi80 <= hi95), candidate.model
        assert np.all(hi95 - lo95 > hi80 - lo80), candidate.model
    assert result.intervals is result.candidates[result.model].intervals


def test_interval_coverage_on_gaussian_noise_is_near_nominal():
    y = load(38, noise=0.5, weekly=False, seed=3)
    times = grid(y.size)
    native = backtest(times[: 30 * 48], y[: 30 * 48], models=("mstl_additive",), windows=7)
    for name in ("snaive_day", "snaive_week"):  # the naive models' own intervals are calibrated already
        assert 0.72 <= native.scores[name].coverage80 <= 0.88, name
        assert 0.90 <= native.scores[name].coverage95 <= 0.99, name
    inside = {80: [], 95: []}
    for day in range(30, 38):  # the forecast's (rescaled) intervals, on days it has not seen
        result = forecast(times[: day * 48], y[: day * 48], models=("mstl_additive",), windows=7)
        actual = y[day * 48 : (day + 1) * 48]
        for level, (lower, upper) in result.candidates["mstl_additive"].intervals.items():
            inside[level].append((actual >= lower) & (actual <= upper))
    assert 0.72 <= np.mean(inside[80]) <= 0.88
    assert 0.89 <= np.mean(inside[95]) <= 0.99


def test_the_backtest_winner_is_the_model_in_use():
    week = np.random.default_rng(5).uniform(1, 9, 336)
    exact = np.tile(week, 4)  # four identical weeks: the weekly naive makes no error at all
    noisy = exact + np.random.default_rng(6).normal(0, 1.0, exact.size)  # the naive doubles the noise

    repeated = forecast(grid(exact.size), exact, windows=7)
    assert repeated.backtest is not None and repeated.backtest.best == "snaive_week"
    assert repeated.model == "snaive_week" and repeated.backtest.scores["snaive_week"].mase == 0
    assert repeated.reason.startswith("snaive_week has the lowest MASE")

    varied = forecast(grid(noisy.size), noisy, windows=7)
    assert varied.backtest is not None
    scores = varied.backtest.scores
    assert varied.model == "mstl" == min(scores, key=lambda name: scores[name].mase)
    assert scores["mstl"].mase < scores["snaive_week"].mase
    assert f"({scores['mstl'].mase:.3f})" in varied.reason


def test_a_backtest_shorter_than_a_week_keeps_the_first_model_and_only_rescales_its_intervals():
    week = np.tile(np.random.default_rng(5).uniform(1, 9, 336), 4)  # the weekly naive is exact
    result = forecast(grid(week.size), week, windows=3)
    assert result.backtest is not None and result.backtest.best == "snaive_week"
    assert result.model == "mstl"
    assert (
        "is too short to choose by" in result.reason
        and "there snaive_week had the lower MASE" in result.reason
    )
    assert any("rescaled" in note for note in result.notes)


@pytest.mark.parametrize(
    ("times", "values", "message"),
    [
        (grid(168), load(21)[:168], "needs at least 14 days of history, got 3.5"),
        (
            [*grid(700), START + 700 * HALF_HOUR + timedelta(minutes=10)],
            load(21)[:701],
            "irregular timestamps",
        ),
        (grid(1008), np.full(1008, np.nan), "every value is missing"),
        ([t.replace(tzinfo=None) for t in grid(1008)], load(21), "has no time zone"),
        (grid(1008), load(21)[:1000], "differ in length"),
        (grid(1008)[::-1], load(21), "times must increase"),
        (grid(1008), np.where(np.arange(1008) % 2, np.nan, load(21)), "50% of the values are missing"),
        (grid(1008, step=timedelta(minutes=7)), load(21), "the values are 7 minutes apart"),
    ],
    ids=[
        "too-short",
        "irregular",
        "all-nan",
        "naive-times",
        "lengths",
        "decreasing",
        "half-missing",
        "7-minutes",
    ],
)
def test_unusable_input_is_refused_with_a_message_naming_the_problem(times, values, message):
    with pytest.raises(Invalid, match=message):
        forecast(times, values)


def test_unknown_models_levels_and_long_horizons_are_refused():
    y = load(15)
    with pytest.raises(Invalid, match="unknown model 'prophet'"):
        forecast(grid(y.size), y, models=("prophet",))
    with pytest.raises(Invalid, match="whole percentages"):
        forecast(grid(y.size), y, levels=(80, 100))
    with pytest.raises(Invalid, match="horizon must be at most 14 days"):
        forecast(grid(y.size), y, horizon=15 * 48)


@pytest.mark.filterwarnings("ignore:Historical data")
def test_a_model_that_cannot_run_is_reported_instead_of_raising():
    short = load(2)[:72]  # a day and a half: no week for the weekly naive to repeat
    out = run_models(("snaive_week", "snaive_day"), short, h=48, levels=(80, 95), ppd=48, log=True)
    assert out["snaive_week"] == "ValueError: the model returned missing or infinite values"
    assert isinstance(out["snaive_day"], Prediction)


def test_a_constant_series_still_forecasts_its_value():
    y = np.full(21 * 48, 3.0)
    result = forecast(grid(y.size), y, windows=7)
    assert "the series is constant" in result.notes
    assert np.allclose(result.mean, 3.0)
    for lower, upper in result.intervals.values():
        assert np.allclose(lower, 3.0) and np.allclose(upper, 3.0)
    assert result.backtest is not None and result.backtest.scores[result.model].mase == 0
    assert all(np.allclose(candidate.mean, 3.0) for candidate in result.candidates.values())


def test_gaps_are_filled_by_interpolation_and_reported():
    y = load(16)
    times = grid(y.size)
    y[100:103] = np.nan  # three missing values
    keep = [i for i in range(y.size) if i != 500]  # and a missing row
    result = forecast([times[i] for i in keep], y[keep], windows=1)
    assert any("filled 4 missing value(s) in 2 gap(s) by linear interpolation" in n for n in result.notes)
    assert np.isfinite(result.mean).all() and result.times[0] == times[-1] + HALF_HOUR


def test_numpy_datetimes_and_aware_datetimes_give_the_same_forecast():
    y = load(15)
    aware = forecast(grid(y.size), y, windows=1)
    stamps = np.datetime64("2025-03-03T00:00", "ns") + np.arange(y.size) * np.timedelta64(30, "m")
    plain = forecast(stamps, y, windows=1)
    assert plain.times == aware.times and aware.times[0] == START + y.size * HALF_HOUR
    assert aware.times[0].tzinfo is UTC
    assert np.array_equal(plain.mean, aware.mean)


def test_the_result_is_plain_json():
    y = load(15)
    data = json.loads(json.dumps(forecast(grid(y.size), y, windows=1).to_dict()))
    assert data["times"][0] == "2025-03-18T00:00:00+00:00"
    assert set(data["baselines"]) == {"snaive_day", "snaive_week"}
    assert len(data["intervals"]["95"]["upper"]) == 48 and data["interval_minutes"] == 30


def test_a_batch_returns_one_forecast_per_series_from_a_mapping_or_a_frame():
    series = {name: (grid(15 * 48), load(15, seed=seed)) for seed, name in enumerate(("a", "b", "c"))}
    mapped = forecast_many(series, n_jobs=1)
    assert list(mapped) == ["a", "b", "c"]
    assert all(
        len(f.times) == 48
        and f.backtest is not None
        and f.backtest.windows == 1
        and f.backtest.origins == (f.times[0] - timedelta(days=7),)
        for f in mapped.values()
    )
    frame = pd.DataFrame(
        [
            (name, t, v)
            for name, (times, values) in series.items()
            for t, v in zip(times, values, strict=True)
        ],
        columns=["unique_id", "ds", "y"],
    ).sample(frac=1.0, random_state=1)  # rows in any order
    for framed in (forecast_many(frame, n_jobs=1), forecast_many(pl.from_pandas(frame), n_jobs=1)):
        assert list(framed) == ["a", "b", "c"]
        for name in series:
            assert framed[name].model == mapped[name].model
            assert np.allclose(framed[name].mean, mapped[name].mean)


def test_a_batch_with_a_bad_series_names_it_and_forecasts_nothing():
    series = {"good": (grid(15 * 48), load(15)), "short": (grid(96), load(2))}
    with pytest.raises(Invalid, match="series 'short': needs at least 14 days") as caught:
        forecast_many(series, n_jobs=1)
    assert list(caught.value.detail["refused"]) == ["short"]


@pytest.mark.slow
def test_a_batch_on_worker_processes_gives_the_same_forecasts():
    series = {f"s{k}": (grid(15 * 48), load(15, seed=k)) for k in range(8)}
    pooled = forecast_many(series, n_jobs=2)
    alone = forecast_many(series, n_jobs=1)
    assert list(pooled) == list(series)
    for name in series:
        assert pooled[name].model == alone[name].model
        assert np.array_equal(pooled[name].mean, alone[name].mean)


def test_mase_of_a_constant_history_is_undefined_unless_the_forecast_is_exact():
    flat = np.full(100, 2.0)
    assert math.isnan(mase([2.0, 3.0], [2.0, 2.0], insample=flat, m=48))
    assert mase([2.0, 2.0], [2.0, 2.0], insample=flat, m=48) == 0
    assert seasonal_scale(np.arange(100.0), 48) == 48.0
    with pytest.raises(Invalid, match="differ in length"):
        mase([1.0, 2.0], [1.0], insample=flat, m=48)
