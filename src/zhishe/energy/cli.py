"""`zhishe energy`: tariffs, the detectors, forecasts, the alert queue and EV charging plans."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import typer
from rich.table import Table

from zhishe.core.cli_support import AS_USER, console, handle_errors, org_id_of, resolve_actor, transaction
from zhishe.core.errors import Invalid

energy_app = typer.Typer(
    help="Energy: tariffs, detectors, forecasts, alerts and EV charging plans.", no_args_is_help=True
)

__all__ = ["energy_app"]


def _site(session: object, code: str) -> int:
    from zhishe.iot import service

    found = service.get_site_by_code(session=session, code=code)  # type: ignore[arg-type]
    if found is None:
        raise Invalid(f"there is no site {code!r}", detail={"argument": "site"})
    return found.id


@energy_app.command("tariff-add")
@handle_errors
def tariff_add(
    definition: Path = typer.Argument(..., help="JSON file: prices, schedules, tiers, tier_mode, cycle"),
    org: str = typer.Option(..., help="Code of the organisation whose tariff it is"),
    family: str = typer.Option(..., help="The family the tariff belongs to, e.g. residential-electricity"),
    name: str = typer.Option(..., help="A name, e.g. 2026"),
    valid_from: str = typer.Option(..., "--from", help="First local date in force (YYYY-MM-DD)"),
    valid_to: str = typer.Option(None, "--to", help="First local date no longer in force"),
    carrier: str = typer.Option("electricity", help="electricity, water or gas"),
    as_user: str = AS_USER,
) -> None:
    """Add a tariff; refused when malformed or overlapping another of its family."""
    from zhishe.energy import service

    try:
        data = json.loads(definition.read_text(encoding="utf-8"))
        start = date.fromisoformat(valid_from)
        end = date.fromisoformat(valid_to) if valid_to else None
    except (OSError, ValueError) as exc:
        raise Invalid(f"cannot read the tariff: {exc}") from exc
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        org_id = org_id_of(session, org)
        assert org_id is not None  # --org is required
        row = service.create_tariff(
            session=session,
            actor=actor,
            org_id=org_id,
            family=family,
            carrier=carrier,
            name=name,
            valid_from=start,
            valid_to=end,
            definition=data,
        )
        console.print(f"tariff {row.id} {row.family}/{row.name} from {row.valid_from}")


@energy_app.command("detect")
@handle_errors
def detect(
    at: str = typer.Option(None, help="Check as of this time (ISO 8601 with offset); default now"),
) -> None:
    """Run the detectors over every household now and raise new alerts (the server does it every 5 minutes)."""
    from zhishe.energy import detection

    now = datetime.fromisoformat(at) if at else None
    if now is not None and now.tzinfo is None:
        raise Invalid("--at needs a timezone offset", detail={"option": "--at"})
    with transaction() as session:
        result = detection.run(session=session, now=now)
    console.print(f"{result.sites} households checked; new alerts: {result.raised or 'none'}")
    for code, reason in result.skipped:
        console.print(f"  inactivity not checked for {code}: {reason}")


@energy_app.command("forecast")
@handle_errors
def forecast(
    site: str = typer.Argument(None, help="Code of a household or transformer; leave out with --all"),
    all_sites: bool = typer.Option(
        False, "--all", help="Every household and transformer with enough history"
    ),
    as_user: str = AS_USER,
) -> None:
    """Make day-ahead forecasts now (the server makes them every night)."""
    from zhishe.energy import forecasting

    if not site and not all_sites:
        raise Invalid("name a site or give --all")
    with transaction() as session:
        if all_sites:
            result = forecasting.refresh_all(session=session)
            console.print(f"{len(result['forecast'])} forecasts made; {len(result['skipped'])} sites skipped")
            for code, reason in list(result["skipped"].items())[:20]:
                console.print(f"  {code}: {reason}")
            return
        actor = resolve_actor(session, as_user)
        run = forecasting.run_for_site(session=session, actor=actor, site_id=_site(session, site))
        console.print(f"{site}: {run.model} — {run.result.get('reason', '')}")


@energy_app.command("alerts")
@handle_errors
def alerts(
    state: str = typer.Option("open", help="open, acknowledged or resolved"), as_user: str = AS_USER
) -> None:
    """The alert queue, newest first."""
    from zhishe.energy import alerts as queue
    from zhishe.energy.pages import reason_of

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        table = Table("id", "site", "kind", "raised", "why", "state")
        for alert in queue.list_alerts(session=session, actor=actor, state=state or None):
            table.add_row(
                str(alert.id),
                str(alert.site_id),
                alert.kind,
                alert.raised_at.isoformat(),
                reason_of(alert),
                alert.state,
            )
        console.print(table)


@energy_app.command("charging-plan")
@handle_errors
def charging_plan(
    park: str = typer.Argument(..., help="Code of the charging park"), as_user: str = AS_USER
) -> None:
    """Plan a charging park's cars (and battery) for the next 24 hours now, and print the plan."""
    from zhishe.energy import evcharging

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        plan = evcharging.replan(
            session=session, actor=actor, site_id=_site(session, park), reason="command line"
        )
        result = plan.result
        console.print(
            f"plan {plan.id}: {result['energy_kwh']} kWh to {len(result['sessions'])} cars, lowest share "
            f"{result['min_share']}, limit {result['limit_kw']} kW, base load from {result['base_load_from']}"
        )
