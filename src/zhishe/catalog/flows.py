"""The import flow: an uploaded file becomes a validated, versioned, profiled dataset version.

Steps, each in its own short transaction so a long import never holds a database lock:
stage (detect format and encoding) → validate against the schema (nothing is written if any
value is bad, unless the user chose to skip bad rows) → allocate row ids → commit a Delta
version → profile it → record the version, the audit event and the job's report.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from zhishe.catalog import ingest, lake
from zhishe.catalog.models import Dataset, DatasetVersion, ImportJob
from zhishe.catalog.schemas import ColumnIn, DatasetCreate, ImportReport, IssueRead
from zhishe.catalog.service import column_specs, get_or_raise, lake_uri, set_columns
from zhishe.catalog.types import ColumnSpec, ColumnType
from zhishe.core import clock, events
from zhishe.core.audit.service import record
from zhishe.core.auth import Actor, authorize
from zhishe.core.config import get_settings
from zhishe.core.errors import Conflict, Invalid, NotFound
from zhishe.core.i18n import T, stored

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = [
    "MODES",
    "Progress",
    "import_path",
    "import_table",
    "infer_preview",
    "job_report",
    "run_import",
    "stage_file",
]

MODES = ("append", "replace", "upsert")
Progress = Callable[[str, float], None]
#: What the steps after validation need and validation does not: delta-rs, DuckDB and sqlglot
#: (the profile), the job threads, logs and metrics. See `_preload`.
_AFTER_VALIDATION = (
    "zhishe.catalog.lake.store",
    "zhishe.catalog.lake.profiling",
    "zhishe.core.jobs",
    "zhishe.core.observability",
)
_SAFE = re.compile(r"[^A-Za-z0-9._\-\u4e00-\u9fff]+")


def _log(event: str, *, level: str = "info", **fields: Any) -> None:
    from zhishe.core.observability import get_logger

    getattr(get_logger("zhishe.import"), level)(event, **fields)


def _count(outcome: str, rows: int = 0) -> None:
    from zhishe.core.observability import IMPORT_ROWS, IMPORTS

    IMPORTS.labels(outcome).inc()
    if rows:
        IMPORT_ROWS.inc(rows)


def _preload() -> threading.Thread:
    """Import the modules of the steps after validation on a thread of their own, while the file
    is read and checked.

    Reading and converting run in pyarrow, which releases the GIL, so these imports (a few tenths
    of a second of pure Python, which a short-lived command such as ``zhishe dataset import``
    pays on every run) use time the process would otherwise spend waiting. The caller joins the
    thread before it goes on; a module that fails to import here fails again, with its real
    error, where it is used.
    """

    def run() -> None:
        for name in _AFTER_VALIDATION:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: S112 - imported again, and reported, where it is used
                continue

    thread = threading.Thread(target=run, name="zhishe-preload", daemon=True)
    thread.start()
    return thread


def _safe_name(filename: str) -> str:
    name = _SAFE.sub("_", Path(filename).name)[:120].strip("._") or "upload"
    return name


def _link_or_copy(source: Path, target: Path) -> None:
    """Keep a file for import without copying its bytes when it can (a hard link on the same file
    system), else copy it. The import reads it once, right away; a later retry of a failed job
    reads whatever the file then holds."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def stage_file(
    *, session: Session, actor: Actor, dataset: int | str, filename: str, source: Path, move: bool = True
) -> ImportJob:
    """Keep an uploaded file for import and detect its format and encoding."""
    found = get_or_raise(session=session, dataset=dataset)
    authorize(actor, "dataset.write", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    settings = get_settings()
    job_id = uuid.uuid4().hex
    folder = settings.uploads_dir / job_id
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / _safe_name(filename)
    if move:
        shutil.move(str(source), target)
    else:
        _link_or_copy(source, target)
    size = target.stat().st_size
    if size > settings.max_upload_bytes:
        shutil.rmtree(folder, ignore_errors=True)
        from zhishe.core.errors import TooLarge

        raise TooLarge(
            f"the file is larger than the limit of {settings.max_upload_mb} MiB (ZHISHE_MAX_UPLOAD_MB)",
            detail={"limit_bytes": settings.max_upload_bytes, "size": size},
        )
    with target.open("rb") as handle:
        head = handle.read(64 * 1024)
    try:
        fmt = ingest.detect_format(filename, head)
        encoding = ingest.detect_encoding(head) if fmt in {"csv", "tsv", "json", "ndjson"} else ""
    except ingest.IngestError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise Invalid(exc.message, detail={"code": exc.code, **exc.detail}) from exc
    now = clock.now()
    job = ImportJob(
        id=job_id,
        dataset_id=found.id,
        user_id=actor.user_id,
        actor=actor.username,
        created_at=now,
        updated_at=now,
        status="staged",
        filename=Path(filename).name[:300],
        path=str(target),
        size=size,
        format=fmt,
        encoding=encoding,
    )
    session.add(job)
    record(
        session=session,
        actor=actor,
        action="dataset.upload",
        object_type="dataset",
        object_id=found.id,
        object_org_id=found.owner_org_id,
        detail={"job": job_id, "file": job.filename, "bytes": size, "format": fmt},
    )
    return job


def infer_preview(job: ImportJob, *, rows: int = 10) -> dict[str, Any]:
    """The first rows of a staged file, as text, and the column types inferred from it."""
    try:
        raw = ingest.read_raw(Path(job.path), fmt=job.format, encoding=job.encoding or None)
    except ingest.IngestError as exc:
        raise Invalid(exc.message, detail={"code": exc.code, **exc.detail}) from exc
    inferred = ingest.infer_columns(raw)
    head = raw.table.slice(0, rows).to_pylist()
    return {
        "columns": inferred,
        "rows": head,
        "row_count": raw.row_count,
        "encoding": raw.encoding,
        "format": raw.format,
    }


def job_report(job: ImportJob) -> ImportReport:
    """The report of an import job as the API shows it."""
    data = dict(job.report or {})
    issues = [IssueRead(**i) for i in data.pop("issues", [])]
    return ImportReport(
        job_id=job.id,
        status=job.status,
        dataset_id=job.dataset_id,
        version=job.version,
        mode=job.mode,  # type: ignore[arg-type]
        format=job.format,
        encoding=job.encoding,
        message=job.message,
        progress=job.progress,
        stage=job.stage,
        issues=issues,
        **{k: v for k, v in data.items() if k in ImportReport.model_fields},
    )


class _Steps:
    """Records progress on the job (own short transactions) and forwards it to a callback."""

    def __init__(self, maker: sessionmaker[Session], job_id: str, callback: Progress | None) -> None:
        self.maker, self.job_id, self.callback, self.last = maker, job_id, callback, 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        if self.callback:
            self.callback(stage, fraction)
        now = time.monotonic()
        if fraction < 1.0 and now - self.last < 0.3:
            return
        self.last = now
        with self.maker.begin() as session:
            session.execute(
                update(ImportJob)
                .where(ImportJob.id == self.job_id)
                .values(stage=stage, progress=fraction, updated_at=clock.now())
            )


def _jsonable(value: Any) -> Any:
    """``value`` with dates, times and other non-JSON values rendered as text."""
    import json

    return json.loads(json.dumps(value, default=str, ensure_ascii=False))


def _fail(
    maker: sessionmaker[Session], actor: Actor, job_id: str, message: str, report: dict[str, Any]
) -> ImportReport:
    report = _jsonable({**report, "message_i18n": stored(message)})
    with maker.begin() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        job.status, job.message, job.report, job.updated_at = "failed", message, report, clock.now()
        job.stage = "failed"
        dataset = session.get(Dataset, job.dataset_id)
        record(
            session=session,
            actor=actor,
            action="dataset.import_failed",
            object_type="dataset",
            object_id=job.dataset_id,
            object_org_id=dataset.owner_org_id if dataset else None,
            detail={"job": job_id, "reason": message[:300]},
        )
        result = job_report(job)
    _count("failed")
    return result


def _issue_report(result: Any, limit: int) -> dict[str, Any]:
    return {
        "rows_in_file": result.row_count,
        "rows_rejected": len(result.bad_rows),
        "issue_count": result.issue_count,
        "issues": [
            {"row": i.row, "column": i.column, "value": i.value, "reason": i.reason}
            for i in result.issues[:limit]
        ],
        "issues_by_column": dict(result.issues_by_column),
    }


def run_import(
    *,
    maker: sessionmaker[Session],
    actor: Actor,
    job_id: str,
    mode: str = "append",
    skip_bad_rows: bool = False,
    note: str = "",
    columns: list[ColumnIn] | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Validate a staged file and commit it as a new version (or fail, changing nothing)."""
    if mode not in MODES:
        raise Invalid(
            f"unknown import mode {mode!r}; use append, replace or upsert", detail={"field": "mode"}
        )
    settings = get_settings()
    steps = _Steps(maker, job_id, progress)
    with maker.begin() as session:
        job = session.get(ImportJob, job_id)
        if job is None:
            raise NotFound(f"import job {job_id} does not exist", detail={"job": job_id})
        dataset = get_or_raise(session=session, dataset=job.dataset_id)
        authorize(actor, "dataset.write", org_id=dataset.owner_org_id, what=f"dataset {dataset.slug}")
        if job.status not in {"staged", "failed"}:
            raise Conflict(f"import job {job_id} is already {job.status}", detail={"job": job_id})
        pending = columns
        if pending is None and not dataset.columns:
            pending = [ColumnIn.from_spec(c) for c in infer_preview(job)["columns"]]
        specs: list[ColumnSpec] = column_specs(dataset) if pending is None else [c.to_spec() for c in pending]
        if not specs:
            raise Invalid(f"dataset {dataset.slug} has no columns", detail={"dataset": dataset.slug})
        job.status, job.mode, job.skip_bad_rows, job.note = "running", mode, skip_bad_rows, note
        job.stage, job.progress, job.updated_at, job.message = "reading", 0.05, clock.now(), ""
        dataset_id, owner_org_id, slug = dataset.id, dataset.owner_org_id, dataset.slug
        time_column, cadence = dataset.time_column, dataset.accrual_periodicity
        path, fmt, encoding, filename = Path(job.path), job.format, job.encoding, job.filename
    keys = [c.name for c in specs if c.is_key]
    if mode == "upsert" and not keys:
        return _fail(
            maker, actor, job_id, T("upsert needs key columns; dataset {slug} declares none", slug=slug), {}
        )
    started = time.perf_counter()
    steps("validating", 0.1)
    preload = _preload()
    try:
        result = ingest.load(
            path,
            specs,
            timezone=settings.timezone,
            fmt=fmt,
            encoding=encoding or None,
            max_issues=settings.import_issue_limit,
        )
    except ingest.IngestError as exc:
        preload.join()
        return _fail(maker, actor, job_id, exc.message, {"code": exc.code, **exc.detail})
    preload.join()
    report = _issue_report(result, settings.import_issue_limit)
    if result.issue_count and not skip_bad_rows:
        message = T(
            "{values} bad value(s) in {rows} row(s); nothing was imported. Fix the file, or choose to skip bad rows.",
            values=format(result.issue_count, ","),
            rows=format(len(result.bad_rows), ","),
        )
        return _fail(maker, actor, job_id, message, report)
    if mode == "upsert":
        dupes = ingest.duplicate_keys(result.table, keys, row_numbers=result.row_numbers)
        if dupes:
            listed = "; ".join(
                f"({', '.join(f'{k}={v}' for k, v in d.key.items())}) in rows {', '.join(map(str, d.rows[:10]))}"
                for d in dupes[:10]
            )
            return _fail(
                maker,
                actor,
                job_id,
                T("duplicate keys in the file: {listed}", listed=listed),
                {**report, "duplicates": [{"key": d.key, "rows": d.rows[:100]} for d in dupes[:100]]},
            )
    if result.table.num_rows == 0:
        return _fail(maker, actor, job_id, T("no valid rows to import"), report)
    reject_file = None
    if result.bad_rows:
        reject_file = str(path.parent / "rejects.csv")
        import pyarrow.csv as pacsv

        pacsv.write_csv(result.reject_table(), reject_file)
    steps("writing", 0.55)
    metadata = {
        "zhishe.job": job_id,
        "zhishe.actor": actor.username,
        "zhishe.mode": mode,
        "zhishe.note": note[:500],
    }
    uri = lake_uri(dataset_id)
    written: lake.WriteResult | None = None
    profile_options: dict[str, Any] = {
        "columns": specs,
        "time_column": time_column,
        "cadence": cadence if time_column else None,
        "now": clock.now(),
        "time_zone": settings.timezone,
    }
    # When the new version will hold exactly the rows in hand (a replace, or a table's first
    # write), profile them in memory while the version is being written.
    early: Future[dict[str, Any]] | None = None
    if mode == "replace" or not lake.table_exists(uri):
        from zhishe.core import jobs

        early = jobs.submit_now(lake.profile_table, table=result.table, version=-1, **profile_options)
    try:
        with maker.begin() as session:
            # Allocating the row ids locks the dataset's row until this transaction ends. The very
            # first write, which creates the Delta table, happens under that lock, so that two
            # first imports never race to create the table; later writes run unlocked.
            start = (
                session.execute(
                    update(Dataset)
                    .where(Dataset.id == dataset_id)
                    .values(next_row_id=Dataset.next_row_id + result.table.num_rows)
                    .returning(Dataset.next_row_id)
                ).scalar_one()
                - result.table.num_rows
            )
            if not lake.table_exists(uri):
                written = _write(uri, result.table, specs, mode, start, metadata)
        if written is None:
            written = _write(uri, result.table, specs, mode, start, metadata)
    except lake.LakeConflictError as exc:
        return _fail(
            maker,
            actor,
            job_id,
            T(
                "another import changed dataset {slug} at the same time; try again ({reason})",
                slug=slug,
                reason=exc.message,
            ),
            report,
        )
    except lake.LakeSchemaError as exc:
        return _fail(
            maker,
            actor,
            job_id,
            T("{reason}; import with mode 'replace' to change the schema", reason=exc.message),
            report,
        )
    steps("profiling", 0.85)
    profile = _profile(uri, written, early, result.table.num_rows, profile_options)
    seconds = time.perf_counter() - started
    with maker.begin() as session:
        now = clock.now()
        # Move the dataset to this version only if no newer one was recorded meanwhile; the UPDATE
        # itself takes the lock, so two imports finishing together cannot both win.
        freshness = profile.get("freshness") or {}
        moved = session.execute(
            update(Dataset)
            .where(
                Dataset.id == dataset_id,
                (Dataset.current_version.is_(None)) | (Dataset.current_version < written.version),
            )
            .values(
                current_version=written.version,
                row_count=written.row_count,
                latest_period=_instant(freshness.get("latest_period")),
                overdue_after=_instant(freshness.get("overdue_after")),
                updated_at=now,
            )
            .returning(Dataset.id)
        ).first()
        current = session.get(Dataset, dataset_id, populate_existing=True)
        job = session.get(ImportJob, job_id)
        assert current is not None and job is not None
        if pending is not None:
            set_columns(session=session, actor=actor, dataset=current, columns=pending)
        if written.committed:
            session.add(
                DatasetVersion(
                    dataset_id=dataset_id,
                    version=written.version,
                    created_at=now,
                    actor=actor.username,
                    user_id=actor.user_id,
                    mode=mode,
                    note=note,
                    source_name=filename,
                    source_format=fmt,
                    source_encoding=result.encoding or encoding,
                    rows_in_file=result.row_count,
                    rows_rejected=len(result.bad_rows),
                    rows_inserted=written.rows_inserted,
                    rows_updated=written.rows_updated,
                    rows_deleted=written.rows_deleted,
                    row_count=written.row_count,
                    columns=[_spec_dict(c) for c in specs],
                    profile=profile,
                    reject_file=reject_file,
                )
            )
        if written.committed:
            events.publish(
                events.Event(
                    "catalog.version_created",
                    {
                        "dataset_id": dataset_id,
                        "version": written.version,
                        "mode": mode,
                        "rows_inserted": written.rows_inserted,
                        "rows_updated": written.rows_updated,
                        "rows_deleted": written.rows_deleted,
                        "row_count": written.row_count,
                        "note": note,
                    },
                ),
                session,
            )
        _log("import committed", dataset=dataset_id, version=written.version, moved=moved is not None)
        report.update(
            {
                "rows_written": result.table.num_rows,
                "rows_inserted": written.rows_inserted,
                "rows_updated": written.rows_updated,
                "rows_deleted": written.rows_deleted,
                "rows_unchanged": written.rows_unchanged,
                "committed": written.committed,
                "reject_file": reject_file is not None,
                "seconds": round(seconds, 3),
            }
        )
        job.status, job.version, job.report, job.stage, job.progress = (
            "done",
            written.version,
            report,
            "done",
            1.0,
        )
        job.updated_at = now
        done_message = (
            T(
                "version {version} committed: {rows} rows",
                version=written.version,
                rows=format(result.table.num_rows, ","),
            )
            if written.committed
            else T(
                "no changes: every row is already as in the file; the dataset stays at version {version}",
                version=written.version,
            )
        )
        job.message = str(done_message)
        report["message_i18n"] = stored(done_message)
        job.report = report
        record(
            session=session,
            actor=actor,
            action="dataset.import" if written.committed else "dataset.import_unchanged",
            object_type="dataset",
            object_id=dataset_id,
            object_org_id=owner_org_id,
            detail={
                "version": written.version,
                "mode": mode,
                "job": job_id,
                "rows": result.table.num_rows,
                "rejected": len(result.bad_rows),
            },
        )
        final = job_report(job)
    _count("done", result.table.num_rows)
    steps("done", 1.0)
    return final


def _profile(
    uri: str,
    written: lake.WriteResult,
    early: Future[dict[str, Any]] | None,
    rows_in_hand: int,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The quality profile of the version just written: the one computed in memory when the
    version holds exactly those rows, else one computed from the lake. A profile problem is
    recorded in the profile; it never undoes a committed version."""
    try:
        in_memory = early.result() if early is not None else None
        if in_memory is not None and written.committed and written.row_count == rows_in_hand:
            return {**in_memory, "version": written.version}
        return lake.profile(uri, version=written.version, **options)
    except lake.LakeError as exc:
        _log("profile failed", level="warning", uri=uri, version=written.version, error=exc.message)
        return {"error": exc.message}


def _write(
    uri: str, table: Any, specs: list[ColumnSpec], mode: str, start: int, metadata: dict[str, str]
) -> lake.WriteResult:
    write_mode: lake.WriteMode = (
        "upsert" if mode == "upsert" else "replace" if mode == "replace" else "append"
    )
    return lake.write_version(
        uri, table, columns=specs, mode=write_mode, row_id_start=start, metadata=metadata
    )


def _spec_dict(spec: ColumnSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "type": spec.type.value,
        "unit": spec.unit,
        "description": spec.description,
        "is_key": spec.is_key,
        "classification": spec.classification.value,
    }


def _instant(value: str | None) -> datetime | None:
    """An aware datetime from a profile's ISO date or datetime (dates at midnight, platform time)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=get_settings().tz)


def import_path(
    *,
    maker: sessionmaker[Session],
    actor: Actor,
    dataset: int | str,
    path: Path,
    mode: str = "append",
    skip_bad_rows: bool = False,
    note: str = "",
    filename: str | None = None,
    move: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Stage a file and import it in one go (the CLI, the API and the demo use this)."""
    with maker.begin() as session:
        job = stage_file(
            session=session,
            actor=actor,
            dataset=dataset,
            filename=filename or path.name,
            source=path,
            move=move,
        )
        job_id = job.id
    return run_import(
        maker=maker,
        actor=actor,
        job_id=job_id,
        mode=mode,
        skip_bad_rows=skip_bad_rows,
        note=note,
        progress=progress,
    )


def import_table(
    *,
    maker: sessionmaker[Session],
    actor: Actor,
    dataset: int | str,
    table: Any,
    mode: str = "append",
    note: str = "",
    filename: str = "table.parquet",
) -> ImportReport:
    """Import an Arrow table as a version, through the same staging, validation and audit as an
    uploaded file (it is written to a temporary Parquet file first). Used by corrections made in
    the browser, derived datasets and published figures."""
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = pa.schema(
        [
            f.with_type(pa.string())
            if pa.types.is_string_view(f.type) or pa.types.is_large_string(f.type)
            else f
            for f in table.schema
        ]
    )
    folder = Path(tempfile.mkdtemp(prefix="zhishe-table-"))
    try:
        path = folder / _safe_name(filename)
        pq.write_table(table.cast(plain), path)
        return import_path(
            maker=maker,
            actor=actor,
            dataset=dataset,
            path=path,
            mode=mode,
            note=note,
            filename=filename,
            move=True,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def get_job_or_raise(*, session: Session, actor: Actor, job_id: str) -> ImportJob:
    """An import job the actor may follow."""
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"import job {job_id} does not exist", detail={"job": job_id})
    dataset = get_or_raise(session=session, dataset=job.dataset_id)
    authorize(actor, "dataset.write", org_id=dataset.owner_org_id, what=f"import job {job_id}")
    return job


def reject_file_of(*, session: Session, actor: Actor, dataset: int | str, version: int) -> Path:
    """The reject file kept with a version imported with skipped rows."""
    found = get_or_raise(session=session, dataset=dataset)
    authorize(actor, "dataset.write", org_id=found.owner_org_id, what=f"dataset {found.slug}")
    row = session.scalar(
        select(DatasetVersion).where(DatasetVersion.dataset_id == found.id, DatasetVersion.version == version)
    )
    if row is None or not row.reject_file or not Path(row.reject_file).exists():
        raise NotFound(f"version {version} of {found.slug} has no reject file", detail={"version": version})
    record(
        session=session,
        actor=actor,
        action="dataset.rejects",
        object_type="dataset",
        object_id=found.id,
        object_org_id=found.owner_org_id,
        detail={"version": version},
    )
    return Path(row.reject_file)


#: A figure dataset: Chinese title, English title, and its (column name, type) pairs.
Figure = tuple[str, str, list[tuple[str, ColumnType]]]


def publish_tables(
    *, session: Session, actor: Actor, datasets: Sequence[tuple[DatasetCreate, Any]], note: str
) -> dict[str, int]:
    """Write each Arrow table as a new version (``replace``) of its dataset, the dataset created from
    its ``DatasetCreate`` on first use. A table without rows is skipped: its dataset waits for its
    first rows. Returns the version written per dataset slug. Commits the session first: each
    import runs in transactions of its own."""
    from zhishe.catalog import service as catalog
    from zhishe.core.db import get_sessionmaker

    for dataset_in, _table in datasets:
        if session.scalar(select(Dataset.id).where(Dataset.slug == dataset_in.slug)) is None:
            catalog.create_dataset(session=session, actor=actor, dataset_in=dataset_in)
    session.commit()
    maker = get_sessionmaker(get_settings().database_url)
    written: dict[str, int] = {}
    for dataset_in, table in datasets:
        slug = dataset_in.slug
        if table.num_rows == 0:
            continue
        report = import_table(
            maker=maker,
            actor=actor,
            dataset=slug,
            table=table,
            mode="replace",
            note=note,
            filename=f"{slug}.parquet",
        )
        if report.version is None:
            raise Invalid(report.message or f"the figures of {slug} were refused", detail={"dataset": slug})
        written[slug] = report.version
    session.expire_all()
    return written


def publish_figures(
    *,
    session: Session,
    actor: Actor,
    owner_org_id: int,
    figures: Mapping[str, Figure],
    rows: Mapping[str, list[dict[str, Any]]],
    note: str,
    theme: str = "government",
    description: tuple[str, str] = ("由平台自动生成的统计。", "Figures computed by the platform."),
) -> dict[str, int | None]:
    """Write each figure's rows as a new version of its dataset (created, owned by
    ``owner_org_id`` and unconditionally shared, on first use). Returns the version written per
    dataset (None when the figure has no rows). Commits the session before importing."""
    import pyarrow as pa

    types = {
        ColumnType.STRING: pa.string(),
        ColumnType.INTEGER: pa.int64(),
        ColumnType.DECIMAL: pa.float64(),
        ColumnType.DATETIME: pa.timestamp("us", tz="UTC"),
    }
    datasets = []
    for slug, (title_zh, title_en, columns) in figures.items():
        found = rows.get(slug) or []
        dataset_in = DatasetCreate(
            slug=slug,
            title_zh=title_zh,
            title_en=title_en,
            owner_org_id=owner_org_id,
            sharing_class="unconditional",
            theme=theme,
            accrual_periodicity="daily",
            description_zh=description[0],
            description_en=description[1],
            columns=[ColumnIn(name=n, type=t, classification="public") for n, t in columns],
        )
        table = pa.table({n: pa.array([r[n] for r in found], type=types[t]) for n, t in columns})
        datasets.append((dataset_in, table))
    written = publish_tables(session=session, actor=actor, datasets=datasets, note=note)
    return {slug: written.get(slug) for slug in figures}
