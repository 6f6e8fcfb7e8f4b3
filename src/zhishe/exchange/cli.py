"""`zhishe exchange`: sharing requests and their answers, grants, usage, the working-day calendar
and webhook delivery."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import typer
from rich.table import Table

from zhishe.core.cli_support import AS_USER, console, handle_errors, resolve_actor, transaction
from zhishe.core.errors import Invalid

exchange_app = typer.Typer(
    help="Data exchange: request, answer, revoke, grants, usage, calendar, webhook delivery.",
    no_args_is_help=True,
)


def _hooks() -> None:
    from zhishe import hooks

    hooks.install()


def _print_request(session: Any, request: Any) -> None:
    from zhishe.exchange.api import to_read

    console.print_json(to_read(session, request).model_dump_json())


def _answer(as_user: str | None, action: str, request_id: int, **values: Any) -> None:
    """Run one transition of the exchange service on a request and print the request after it."""
    from zhishe.exchange import service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        transition = getattr(service, action)
        _print_request(session, transition(session=session, actor=actor, request_id=request_id, **values))


def _filter(text: str | None) -> dict[str, Any] | None:
    from zhishe.catalog.access import where_from_text

    return where_from_text(text, name="--where")


@exchange_app.command("request")
@handle_errors
def request(
    dataset: str = typer.Argument(..., help="Id or slug of the dataset"),
    purpose: str = typer.Option(..., help="What the data is for"),
    legal_basis: str = typer.Option(..., "--legal-basis", help="The legal basis of the use"),
    columns: str = typer.Option(..., help="Comma-separated columns needed"),
    starts_on: str = typer.Option(..., "--from", help="First day of use (YYYY-MM-DD)"),
    expires_on: str = typer.Option(..., "--until", help="Last day of use (YYYY-MM-DD)"),
    mode: str = typer.Option("query", help="query, export or subscription"),
    where: str = typer.Option(
        None, help='Row scope as a JSON filter, e.g. {"column":"district","op":"=","value":"东城"}'
    ),
    min_version: int = typer.Option(None, "--min-version", help="Only versions from this one on"),
    draft: bool = typer.Option(False, help="Keep it as a draft instead of submitting it"),
    as_user: str = AS_USER,
) -> None:
    """File a request for another organisation's dataset."""
    from pydantic import ValidationError

    from zhishe.exchange import service
    from zhishe.exchange.schemas import RequestIn

    _hooks()
    try:
        data = RequestIn(
            dataset=dataset,
            purpose=purpose,
            legal_basis=legal_basis,
            columns=[c.strip() for c in columns.split(",") if c.strip()],
            row_filter=_filter(where),
            min_version=min_version,
            starts_on=date.fromisoformat(starts_on),
            expires_on=date.fromisoformat(expires_on),
            mode=mode,  # type: ignore[arg-type]
            submit=not draft,
        )
    except (ValidationError, ValueError) as exc:
        raise Invalid(f"invalid request: {exc}") from exc
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        _print_request(session, service.create_request(session=session, actor=actor, data=data))


@exchange_app.command("list")
@handle_errors
def list_(
    box: str = typer.Option("outgoing", help="outgoing, incoming (by deadline) or all (data bureau)"),
    state: str = typer.Option(None, help="Only requests in this state"),
    as_user: str = AS_USER,
) -> None:
    """List sharing requests."""
    from zhishe.exchange import service

    _hooks()
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        page = service.list_requests(session=session, actor=actor, box=box, state=state, limit=500)
        table = Table("id", "dataset", "requester", "state", "due", "mode", "purpose")
        for r in page.items:
            due = r.due_at.isoformat(timespec="minutes") if r.due_at else ""
            if service.is_overdue(r):
                due = f"[red]{due} (overdue)[/]"
            table.add_row(str(r.id), str(r.dataset_id), r.requester, r.state, due, r.mode, r.purpose[:40])
        console.print(table)


@exchange_app.command("show")
@handle_errors
def show(request_id: int = typer.Argument(...), as_user: str = AS_USER) -> None:
    """Show one request."""
    from zhishe.exchange import service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        _print_request(
            session, service.get_request_or_raise(session=session, actor=actor, request_id=request_id)
        )


@exchange_app.command("submit")
@handle_errors
def submit(request_id: int = typer.Argument(...), as_user: str = AS_USER) -> None:
    """Submit a draft request."""
    _answer(as_user, "submit", request_id)


@exchange_app.command("approve")
@handle_errors
def approve(request_id: int = typer.Argument(...), as_user: str = AS_USER) -> None:
    """Approve a request as asked."""
    _answer(as_user, "approve", request_id)


@exchange_app.command("narrow")
@handle_errors
def narrow(
    request_id: int = typer.Argument(...),
    reason: str = typer.Option(..., help="Why the scope is narrower (required)"),
    columns: str = typer.Option(None, help="Comma-separated columns to keep"),
    where: str = typer.Option(None, help="A JSON filter ANDed to the requested rows"),
    min_version: int = typer.Option(None, "--min-version"),
    starts_on: str = typer.Option(None, "--from"),
    expires_on: str = typer.Option(None, "--until"),
    as_user: str = AS_USER,
) -> None:
    """Approve with a narrower scope."""
    from pydantic import ValidationError

    from zhishe.exchange.schemas import NarrowIn

    try:
        data = NarrowIn(
            reason=reason,
            columns=[c.strip() for c in columns.split(",") if c.strip()] if columns else None,
            row_filter=_filter(where),
            min_version=min_version,
            starts_on=date.fromisoformat(starts_on) if starts_on else None,
            expires_on=date.fromisoformat(expires_on) if expires_on else None,
        )
    except (ValidationError, ValueError) as exc:
        raise Invalid(f"invalid narrowing: {exc}") from exc
    _answer(as_user, "narrow", request_id, data=data)


@exchange_app.command("reject")
@handle_errors
def reject(
    request_id: int = typer.Argument(...),
    reason: str = typer.Option(..., help="Why (required)"),
    as_user: str = AS_USER,
) -> None:
    """Reject a request."""
    _answer(as_user, "reject", request_id, reason=reason)


@exchange_app.command("revoke")
@handle_errors
def revoke(
    request_id: int = typer.Argument(...),
    reason: str = typer.Option(..., help="Why (required)"),
    as_user: str = AS_USER,
) -> None:
    """Revoke the grant of a request; access stops at once."""
    _answer(as_user, "revoke", request_id, reason=reason)


@exchange_app.command("grants")
@handle_errors
def grants(
    side: str = typer.Option("held", help="held (your grants) or given (on your datasets)"),
    live: bool = typer.Option(False, help="Only grants in force now"),
    as_user: str = AS_USER,
) -> None:
    """List grants."""
    from zhishe.exchange import service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        page = service.list_grants(session=session, actor=actor, side=side, live_only=live, limit=500)
        table = Table("id", "request", "dataset", "grantee", "mode", "columns", "until", "live")
        for g in page.items:
            table.add_row(
                str(g.id),
                str(g.request_id),
                str(g.dataset_id),
                str(g.grantee_org_id),
                g.mode,
                ",".join(g.columns),
                g.expires_at.isoformat(timespec="minutes"),
                "yes" if service.is_live(g) else "no",
            )
        console.print(table)


@exchange_app.command("usage")
@handle_errors
def usage(dataset: str = typer.Argument(..., help="Id or slug"), as_user: str = AS_USER) -> None:
    """Who read a dataset through grants, how often, for which purpose."""
    from zhishe.exchange import service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        from sqlalchemy import select

        from zhishe.core.accounts.models import Organisation

        codes = {o.id: o.code for o in session.scalars(select(Organisation))}
        table = Table("grant", "organisation", "reads", "rows", "last read", "purpose")
        for row in service.usage(session=session, actor=actor, dataset=dataset):
            last = row["last_read_at"].isoformat(timespec="minutes") if row["last_read_at"] else ""
            table.add_row(
                str(row["grant_id"]),
                codes.get(row["org_id"], str(row["org_id"])),
                str(row["reads"]),
                f"{row['rows']:,}",
                last,
                row["purpose"],
            )
        console.print(table)


@exchange_app.command("refresh")
@handle_errors
def refresh() -> None:
    """Start, expire and escalate requests by the clock (the server also does this by itself)."""
    from zhishe.exchange import service

    with transaction() as session:
        console.print(f"{service.refresh(session)} request(s) changed")


@exchange_app.command("calendar")
@handle_errors
def calendar(
    year: int = typer.Option(None, help="Year (default: this year)"),
    holiday: str = typer.Option(None, help="Make this day (YYYY-MM-DD) a holiday"),
    workday: str = typer.Option(None, help="Make this day (YYYY-MM-DD) a working day"),
    name: str = typer.Option("", help="Name of the day"),
    remove: str = typer.Option(None, help="Drop the edit of this day (YYYY-MM-DD)"),
    as_user: str = AS_USER,
) -> None:
    """Show or edit the working-day calendar of reply deadlines."""
    from zhishe.exchange import workdays

    def day_of(text: str, option: str) -> date:
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise Invalid(
                f"--{option}: {text!r} is not a date (YYYY-MM-DD)", detail={"option": option}
            ) from exc

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        if holiday:
            workdays.set_day(
                session, actor=actor, day=day_of(holiday, "holiday"), name=name, is_workday=False
            )
        if workday:
            workdays.set_day(session, actor=actor, day=day_of(workday, "workday"), name=name, is_workday=True)
        if remove:
            workdays.remove_day(session, actor=actor, day=day_of(remove, "remove"))
        table = Table("day", "name", "kind", "source")
        for d in workdays.calendar_days(session, year):
            table.add_row(d.day.isoformat(), d.name, "working day" if d.is_workday else "holiday", d.source)
        console.print(table)


@exchange_app.command("issue")
@handle_errors
def issue(
    dataset: str = typer.Argument(..., help="Id or slug"),
    problem: str = typer.Option(..., help="What is wrong"),
    kind: str = typer.Option("value", help="value, missing_period or definition"),
    key: list[str] = typer.Option([], help="Key value of the affected row, as column=value (repeat)"),
    column: str = typer.Option("", help="The affected column"),
    suggested: str = typer.Option("", help="The suggested value"),
    period: str = typer.Option("", help="The missing period (kind missing_period)"),
    as_user: str = AS_USER,
) -> None:
    """Report a problem in a dataset."""
    from zhishe.exchange import issues

    pairs = {}
    for item in key:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise Invalid(f"--key: {item!r} is not column=value", detail={"option": "key"})
        pairs[name] = value
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        filed = issues.file_issue(
            session=session,
            actor=actor,
            dataset=dataset,
            kind=kind,
            problem=problem,
            key_values=pairs or None,
            column=column,
            suggested_value=suggested,
            period=period,
        )
        console.print(f"data issue #{filed.id} filed ({filed.state})")


@exchange_app.command("issues")
@handle_errors
def issues_(
    box: str = typer.Option(
        "incoming", help="incoming (on your datasets), outgoing (reported by you) or all"
    ),
    as_user: str = AS_USER,
) -> None:
    """List data issues."""
    from zhishe.exchange import issues

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        table = Table("id", "dataset", "kind", "state", "reported", "problem")
        for i in issues.list_issues(session=session, actor=actor, box=box, limit=500).items:
            table.add_row(str(i.id), str(i.dataset_id), i.kind, i.state, i.reporter, i.problem[:50])
        console.print(table)


@exchange_app.command("derive")
@handle_errors
def derive(
    slug: str = typer.Argument(..., help="Identifier of the new dataset"),
    sql: str = typer.Option(..., help="One SELECT over your granted views (see `zhishe exchange views`)"),
    title: str = typer.Option(..., help="Title (Chinese)"),
    title_en: str = typer.Option("", help="Title (English)"),
    as_user: str = AS_USER,
) -> None:
    """Register a derived dataset over your granted views and materialise it."""
    from zhishe.exchange import derived

    _hooks()
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        made = derived.create(
            session=session, actor=actor, slug=slug, title_zh=title, title_en=title_en, sql=sql
        )
        console.print(f"derived dataset {slug} created from {', '.join(sorted(made.sources))}")


@exchange_app.command("views")
@handle_errors
def views(as_user: str = AS_USER) -> None:
    """The views your live grants give, for derived SQL."""
    from zhishe.exchange import derived

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        table = Table("view", "dataset", "grant", "columns")
        for v in derived.granted_views(session=session, actor=actor):
            table.add_row(v.name, v.slug, str(v.grant_id), ", ".join(v.columns))
        console.print(table)


@exchange_app.command("refresh-derived")
@handle_errors
def refresh_derived(dataset: str = typer.Argument(..., help="Id or slug"), as_user: str = AS_USER) -> None:
    """Run a derived dataset's query again over its sources' current versions."""
    from zhishe.exchange import derived

    _hooks()
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        console.print(f"{dataset}: version {derived.refresh(session=session, actor=actor, dataset=dataset)}")


@exchange_app.command("lineage")
@handle_errors
def lineage(dataset: str = typer.Argument(..., help="Id or slug"), as_user: str = AS_USER) -> None:
    """Upstream and downstream datasets, as JSON."""
    from zhishe.exchange import derived

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        console.print_json(
            json.dumps(derived.lineage(session=session, actor=actor, dataset=dataset), default=str)
        )


@exchange_app.command("dashboard")
@handle_errors
def dashboard(
    publish: bool = typer.Option(False, help="Also write each figure as a version of its dataset"),
    as_user: str = AS_USER,
) -> None:
    """The data bureau's figures, as JSON."""
    from zhishe.exchange import dashboard as figures

    _hooks()
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        if publish:
            console.print_json(json.dumps(figures.publish(session=session, actor=actor)))
        else:
            console.print_json(json.dumps(figures.figures(session=session, actor=actor), default=str))


@exchange_app.command("deliver")
@handle_errors
def deliver() -> None:
    """Send the webhook deliveries that are due now (the server also does this by itself)."""
    from zhishe.core.cli_support import maker
    from zhishe.exchange import webhooks

    console.print(f"{webhooks.deliver_due(maker())} delivery attempt(s)")
