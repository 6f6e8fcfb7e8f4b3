"""`zhishe dataset`: list, show, create, import, versions, diff and export datasets.

Each command imports what it needs inside its body, so that one command does not pay for the
others' modules (an import of a CSV never loads the diff, export or query code, nor the web API).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import typer

from zhishe.core.cli_support import (
    AS_USER,
    console,
    err_console,
    handle_errors,
    keep_loaded,
    maker,
    resolve_actor,
    transaction,
    without_pandas,
)
from zhishe.core.errors import Invalid

dataset_app = typer.Typer(
    help="Datasets: list, show, create, import, versions, diff, export.", no_args_is_help=True
)


@dataset_app.command("list")
@handle_errors
def list_(q: str = typer.Option(None, help="Search text"), as_user: str = AS_USER) -> None:
    """List datasets."""
    from rich.table import Table

    from zhishe.catalog import service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        page, _facets = service.list_datasets(session=session, actor=actor, q=q, limit=500)
        table = Table("id", "slug", "title", "class", "cadence", "version", "rows")
        for d in page.items:
            table.add_row(
                str(d.id),
                d.slug,
                d.title_zh,
                d.sharing_class,
                d.accrual_periodicity,
                "" if d.current_version is None else str(d.current_version),
                f"{d.row_count:,}",
            )
        console.print(table)


@dataset_app.command("show")
@handle_errors
def show(dataset: str = typer.Argument(..., help="Id or slug"), as_user: str = AS_USER) -> None:
    """Show a dataset's metadata and schema."""
    from zhishe.catalog import service
    from zhishe.catalog.api import to_read

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        console.print_json(
            to_read(
                service.read_dataset(session=session, actor=actor, dataset=dataset), actor
            ).model_dump_json()
        )


@dataset_app.command("create")
@handle_errors
def create(
    metadata: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="JSON file with the dataset's metadata (and optionally its columns)",
    ),
    as_user: str = AS_USER,
) -> None:
    """Register a dataset from a JSON metadata file (the same shape as POST /api/v1/datasets)."""
    from zhishe.catalog import service
    from zhishe.catalog.schemas import DatasetCreate

    try:
        data = json.loads(metadata.read_text(encoding="utf-8"))
        dataset_in = DatasetCreate.model_validate(data)
    except (json.JSONDecodeError, ValueError) as exc:
        raise Invalid(f"{metadata}: {exc}") from exc
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        found = service.create_dataset(session=session, actor=actor, dataset_in=dataset_in)
        console.print(f"created dataset {found.id} ({found.slug})")


@dataset_app.command("import")
@handle_errors
def import_(
    path: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="CSV, TSV, XLSX, JSON, NDJSON or Parquet file"
    ),
    dataset: str = typer.Option(..., "--dataset", help="Id or slug of the dataset"),
    mode: str = typer.Option("append", help="append, replace or upsert"),
    skip_bad_rows: bool = typer.Option(
        False, "--skip-bad-rows", help="Import the good rows; keep the bad in a reject file"
    ),
    note: str = typer.Option("", help="Change note for the new version"),
    as_user: str = AS_USER,
) -> None:
    """Validate a file and commit it as a new version of a dataset."""
    with without_pandas():  # pyarrow would import it for nothing: see without_pandas
        _import(path, dataset, mode, skip_bad_rows, note, as_user)


def _import(path: Path, dataset: str, mode: str, skip_bad_rows: bool, note: str, as_user: str) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from zhishe.catalog import flows

    keep_loaded()  # a short process: see keep_loaded
    if mode not in flows.MODES:
        raise Invalid(f"--mode must be one of {', '.join(flows.MODES)}")
    with transaction() as session:
        actor = resolve_actor(session, as_user)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task("reading", total=1.0)

        def step(stage: str, fraction: float) -> None:
            progress.update(task, description=stage, completed=fraction)

        report = flows.import_path(
            maker=maker(),
            actor=actor,
            dataset=dataset,
            path=path,
            mode=mode,
            skip_bad_rows=skip_bad_rows,
            note=note,
            progress=step,
        )
    if report.status != "done":
        err_console.print(f"[bold red]import failed:[/] {report.message}")
        for issue in report.issues[:20]:
            err_console.print(f"  row {issue.row}, column {issue.column}: {issue.reason}")
        if report.issue_count > 20:
            err_console.print(
                f"  … {report.issue_count - 20} more (see the job report: /api/v1/imports/{report.job_id})"
            )
        raise typer.Exit(1)
    console.print(
        f"version {report.version}: {report.rows_written:,} rows written "
        f"({report.rows_inserted:,} inserted, {report.rows_updated:,} updated, "
        f"{report.rows_rejected:,} rejected)"
    )


@dataset_app.command("versions")
@handle_errors
def versions(dataset: str = typer.Argument(...), as_user: str = AS_USER) -> None:
    """List a dataset's versions."""
    from rich.table import Table

    from zhishe.catalog import reads

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        table = Table("version", "when", "who", "mode", "rows", "+", "~", "-", "rejected", "note")
        for v in reads.list_versions(session=session, actor=actor, dataset=dataset):
            table.add_row(
                str(v.version),
                v.created_at.isoformat(timespec="seconds"),
                v.actor,
                v.mode,
                f"{v.row_count:,}",
                f"{v.rows_inserted:,}",
                f"{v.rows_updated:,}",
                f"{v.rows_deleted:,}",
                f"{v.rows_rejected:,}",
                v.note,
            )
        console.print(table)


@dataset_app.command("diff")
@handle_errors
def diff(
    dataset: str = typer.Argument(...),
    from_version: int = typer.Option(..., "--from", help="Older version"),
    to_version: int = typer.Option(..., "--to", help="Newer version"),
    as_user: str = AS_USER,
) -> None:
    """Rows added, removed and changed between two versions (JSON)."""
    from zhishe.catalog import reads

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        result = reads.diff_versions(
            session=session, actor=actor, dataset=dataset, from_version=from_version, to_version=to_version
        )
    console.print_json(json.dumps(reads.diff_to_dict(result), ensure_ascii=False, default=str))


@dataset_app.command("export")
@handle_errors
def export(
    dataset: str = typer.Argument(...),
    output: Path = typer.Option(..., "--output", "-o", help="File to write"),
    fmt: str = typer.Option("csv", "--format", help="csv, json, ndjson or parquet"),
    version: int = typer.Option(None, help="Version to export (default: latest)"),
    as_user: str = AS_USER,
) -> None:
    """Export a version's rows to a file."""
    from zhishe.catalog import reads

    if fmt not in ("csv", "json", "ndjson", "parquet"):
        raise Invalid(f"--format must be csv, json, ndjson or parquet, not {fmt!r}")
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        count = reads.export_rows(
            session=session, actor=actor, dataset=dataset, fmt=cast(Any, fmt), dest=output, version=version
        )
    console.print(f"wrote {count:,} rows to {output}")
