"""`zhishe opendata`: open a dataset, draft and publish releases through the privacy gate, check
timeliness, answer data requests and publish the portal's statistics. `zhishe areas`: the area list."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from zhishe.core.cli_support import AS_USER, console, handle_errors, resolve_actor, transaction
from zhishe.core.errors import Invalid

opendata_app = typer.Typer(
    help="Open data: settings, drafts, releases, downloads, timeliness, data requests, statistics.",
    no_args_is_help=True,
)
areas_app = typer.Typer(
    help="The area list: district, subdistrict, community, building, unit.", no_args_is_help=True
)


def _json_file(path: Path | None, name: str) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Invalid(f"{name}: {path} is not a readable JSON file ({exc})", detail={"option": name}) from exc
    if not isinstance(data, dict):
        raise Invalid(f"{name}: {path} must hold a JSON object", detail={"option": name})
    return data


def _print_release(session: Any, release: Any) -> None:
    from zhishe.opendata.api import release_read

    console.print_json(release_read(session, release).model_dump_json())


@opendata_app.command("settings")
@handle_errors
def settings(
    dataset: str = typer.Argument(..., help="Id or slug of the dataset"),
    policy: Path = typer.Option(None, help="A JSON file with the de-identification policy"),
    cadence: str = typer.Option(
        None, help="hourly, daily, weekly, monthly, quarterly, annual, irregular, never"
    ),
    order_by: str = typer.Option(None, "--order-by", help="Comma-separated columns releases are sorted by"),
    budget: float = typer.Option(None, help="Total ε of differentially private releases"),
    featured: bool = typer.Option(None, "--featured/--not-featured", help="Show on the portal's home page"),
    as_user: str = AS_USER,
) -> None:
    """Show or change how a dataset is opened."""
    from zhishe.opendata import service
    from zhishe.opendata.schemas import OpenSettingsRead

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        changes: dict[str, Any] = {
            "policy": _json_file(policy, "--policy"),
            "cadence": cadence,
            "order_by": [c.strip() for c in order_by.split(",") if c.strip()]
            if order_by is not None
            else None,
            "dp_budget": budget,
            "featured": featured,
        }
        given = {k: v for k, v in changes.items() if v is not None}
        if given:
            found = service.configure(session=session, actor=actor, dataset=dataset, **given)
        else:
            found = service.read_settings(session=session, actor=actor, dataset=dataset)
        console.print_json(OpenSettingsRead.model_validate(found).model_dump_json())


@opendata_app.command("draft")
@handle_errors
def draft(
    dataset: str = typer.Argument(..., help="Id or slug of the dataset"),
    version: int = typer.Option(None, help="The version to release (default: the latest)"),
    policy: Path = typer.Option(None, help="A JSON policy file for this draft (default: the dataset's)"),
    as_user: str = AS_USER,
) -> None:
    """Compute a release through the privacy gate and print it with its risk report."""
    from zhishe.opendata import service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        found = service.draft_release(
            session=session,
            actor=actor,
            dataset=dataset,
            version=version,
            policy=_json_file(policy, "--policy"),
        )
        _print_release(session, found)


@opendata_app.command("publish")
@handle_errors
def publish(
    release_id: int = typer.Argument(..., help="Id of the draft"),
    note: str = typer.Option("", help="What changed (required when a definition changed)"),
    as_user: str = AS_USER,
) -> None:
    """Publish a draft under the next release number."""
    from zhishe.opendata import service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        _print_release(
            session, service.publish_release(session=session, actor=actor, release_id=release_id, note=note)
        )


@opendata_app.command("discard")
@handle_errors
def discard(release_id: int = typer.Argument(..., help="Id of the draft"), as_user: str = AS_USER) -> None:
    """Throw a draft away."""
    from zhishe.opendata import service

    with transaction() as session:
        service.discard(session=session, actor=resolve_actor(session, as_user), release_id=release_id)
        console.print(f"draft {release_id} discarded")


@opendata_app.command("releases")
@handle_errors
def releases(dataset: str = typer.Argument(..., help="Slug of an open dataset")) -> None:
    """List the published releases of an open dataset."""
    from zhishe.opendata import service

    with transaction() as session:
        opened = service.public_dataset(session=session, slug=dataset)
        table = Table("release", "version", "model", "rows", "published", "definition change", "note")
        for r in opened.releases:
            table.add_row(
                str(r.number),
                str(r.source_version),
                r.model,
                f"{r.row_count:,}",
                r.published_at.isoformat(timespec="seconds") if r.published_at else "",
                "yes" if r.definition_changed else "",
                r.note[:60],
            )
        console.print(table)


@opendata_app.command("download")
@handle_errors
def download(
    dataset: str = typer.Argument(..., help="Slug of an open dataset"),
    output: Path = typer.Option(..., "-o", "--output", help="The file to write"),
    fmt: str = typer.Option("csv", "--format", help="csv, json, ndjson, parquet, xlsx or geojson"),
    release: int = typer.Option(None, "--release", help="Release number (default: the newest)"),
    bom: bool = typer.Option(False, help="Start a CSV with a byte-order mark (for Excel)"),
) -> None:
    """Write a published release to a file, as the portal's download does."""
    from zhishe.opendata import queries

    with transaction() as session:
        prepared = queries.download(
            session=session, slug=dataset, fmt=fmt, version=release, bom=bom, count=False
        )
    written = 0
    with output.open("wb") as out:
        for chunk in prepared.chunks:
            out.write(chunk)
            written += len(chunk)
    console.print(f"wrote {written:,} bytes to {output}")


@opendata_app.command("check")
@handle_errors
def check() -> None:
    """Find open datasets whose next release is late and tell their owners (run from cron)."""
    from zhishe.opendata import portal

    with transaction() as session:
        late = portal.check_timeliness(session)
    console.print(f"{len(late)} dataset(s) newly overdue" + (f": {', '.join(late)}" if late else ""))


@opendata_app.command("stats")
@handle_errors
def statistics(
    publish_figures: bool = typer.Option(False, "--publish", help="Also write the figures as datasets"),
    as_user: str = AS_USER,
) -> None:
    """Print the portal's statistics; with --publish, write them as datasets of the data bureau."""
    from zhishe.opendata import stats

    with transaction() as session:
        # publish first, so that a refusal prints only the error and not half of the answer
        written = (
            stats.publish(session=session, actor=resolve_actor(session, as_user)) if publish_figures else None
        )
        console.print_json(json.dumps(stats.figures(session), default=str))
        if written is not None:
            console.print_json(json.dumps(written))


@opendata_app.command("requests")
@handle_errors
def list_requests(state: str = typer.Option(None, help="open, answered, declined or overdue")) -> None:
    """List public data requests."""
    from zhishe.core.config import get_settings
    from zhishe.opendata import datarequests

    zone = get_settings().tz
    with transaction() as session:
        table = Table("#", "state", "title", "supporters", "due", "owner")
        for r in datarequests.list_requests(session=session, state=state):
            view = datarequests.view(session, r, None)
            # the deadline is the first instant after the last day to answer: show that day, in
            # the platform's time zone (not the UTC date of the instant)
            last_day = (r.due_at - timedelta(microseconds=1)).astimezone(zone).date()
            table.add_row(
                str(r.id),
                r.state + (" (overdue)" if view.overdue else ""),
                r.title[:50],
                str(r.supporters),
                last_day.isoformat(),
                view.owner_name,
            )
        console.print(table)


@opendata_app.command("answer")
@handle_errors
def answer(
    request_id: int = typer.Argument(..., help="Number of the data request"),
    dataset: str = typer.Option(None, help="Answer with this open dataset's release"),
    release: int = typer.Option(None, help="Release number (default: the newest)"),
    decline: str = typer.Option(None, help="Decline, with this public reason"),
    as_user: str = AS_USER,
) -> None:
    """Close a data request with a release, or decline it with a public reason."""
    from zhishe.opendata import datarequests

    if (dataset is None) == (decline is None):
        raise Invalid("give either --dataset (to answer) or --decline REASON", detail={"option": "--dataset"})
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        if dataset is not None:
            found = datarequests.answer(
                session=session, actor=actor, request_id=request_id, dataset=dataset, number=release
            )
        else:
            found = datarequests.decline(session=session, actor=actor, request_id=request_id, reason=decline)
        console.print(f"request {found.id} is {found.state}")


@areas_app.command("import")
@handle_errors
def import_areas(
    path: Path = typer.Argument(..., help="CSV with code,parent,level,name_zh,name_en,lat,lon"),
) -> None:
    """Add or update areas from a CSV file (all or nothing)."""
    from zhishe.core.areas import service as areas

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Invalid(f"cannot read {path}: {exc.strerror}", detail={"file": str(path)}) from exc
    with transaction() as session:
        result = areas.import_rows(
            session=session, actor=resolve_actor(session, None), rows=areas.parse_csv(data)
        )
    console.print(f"{result['created']} area(s) created, {result['updated']} updated")


@areas_app.command("list")
@handle_errors
def list_areas(
    level: str = typer.Option(None, help="district, subdistrict, community, building or unit"),
    parent: str = typer.Option(None, help="Only the areas directly under this code"),
) -> None:
    """List areas."""
    from zhishe.core.areas import service as areas

    with transaction() as session:
        table = Table("code", "level", "name", "lat", "lon")
        for a in areas.list_areas(session=session, level=level, parent=parent):
            table.add_row(
                a.code,
                a.level,
                a.name_zh,
                "" if a.lat is None else f"{a.lat:.6f}",
                "" if a.lon is None else f"{a.lon:.6f}",
            )
        console.print(table)
