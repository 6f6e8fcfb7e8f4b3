"""`zhishe iot`: sites and devices (provisioning, CSV import, token rotation), the flush to the lake,
the simulator, the MQTT bridge and the Mosquitto configuration it relies on."""

from __future__ import annotations

from pathlib import Path

import typer

from zhishe.core.cli_support import AS_USER, console, handle_errors, org_id_of, resolve_actor, transaction
from zhishe.core.errors import Invalid

iot_app = typer.Typer(
    help="IoT: sites, devices, tokens, the lake flush, the simulator, the MQTT bridge and the broker.",
    no_args_is_help=True,
)

__all__ = ["iot_app"]


@iot_app.command("mqtt-bridge")
@handle_errors
def mqtt_bridge(
    url: str = typer.Option(
        None, help="Broker URL, e.g. mqtt://user:password@127.0.0.1:1884 (default: ZHISHE_MQTT_URL)"
    ),
    client_id: str = typer.Option(
        "zhishe-bridge", "--client-id", help="MQTT client id: names the persistent session"
    ),
    suffix: str = typer.Option(
        "", help="Appended to the client id, e.g. -2 for a second bridge with its own session"
    ),
    topic_root: str = typer.Option(
        "", "--topic-root", help="Prefix of every topic read, ending in '/' (default: none)"
    ),
    shared: str = typer.Option(
        None, help="Share the topics with the other bridges of this group (each with its own --suffix)"
    ),
    batch_size: int = typer.Option(2000, "--batch-size", help="Most messages stored in one transaction"),
    batch_ms: float = typer.Option(50.0, "--batch-ms", help="Longest wait, in ms, for a batch to fill"),
    session_expiry: int = typer.Option(
        7 * 24 * 3600,
        "--session-expiry",
        help="Seconds the broker keeps the session and its messages while the bridge is away",
    ),
) -> None:
    """Store readings published to the broker; acknowledge each message once its batch is committed.

    Runs until stopped (SIGTERM or Ctrl-C), then finishes the batch in hand.
    """
    import signal

    from zhishe.core.cli_support import maker
    from zhishe.core.config import get_settings
    from zhishe.core.observability import configure_logging
    from zhishe.iot.mqtt import Bridge, BridgeOptions, BrokerAddress

    settings = get_settings()
    configure_logging(settings.log_level)
    options = BridgeOptions(
        broker=BrokerAddress.parse(url or settings.mqtt_url),
        client_id=client_id + suffix,
        root=topic_root,
        shared=shared,
        batch_size=batch_size,
        batch_wait=batch_ms / 1000,
        session_expiry=session_expiry,
    )
    bridge = Bridge(options, sessions=maker())

    def stop(_signal: int, _frame: object) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    broker = options.broker
    console.print(
        f"bridge {options.client_id} reading {broker.host}:{broker.port}; stop with Ctrl-C or SIGTERM"
    )
    bridge.run()


@iot_app.command("mosquitto-config")
@handle_errors
def mosquitto_config(
    out: Path = typer.Option(..., "--out", help="Directory for mosquitto.conf, the password and ACL files"),
    port: int = typer.Option(1883, help="Port of the device listener"),
    bind: str = typer.Option("0.0.0.0", help="Address of the device listener"),  # noqa: S104
    bridge_port: int = typer.Option(1884, "--bridge-port", help="Port of the bridge's listener"),
    bridge_bind: str = typer.Option("127.0.0.1", "--bridge-bind", help="Address of the bridge's listener"),
    bridge_user: str = typer.Option("zhishe-bridge", "--bridge-user", help="The bridge's broker username"),
    topic_root: str = typer.Option(
        "", "--topic-root", help="The bridge's topic root, ending in '/' (default: none)"
    ),
    data_dir: Path = typer.Option(
        None, "--data-dir", help="Where the broker persists sessions (default: OUT/data)"
    ),
    max_queued: int = typer.Option(
        1_000_000, "--max-queued", help="Messages the broker holds for the bridge while it is away"
    ),
) -> None:
    """Write a Mosquitto configuration: devices log in with their token, each confined to its own topics.

    The bridge's password is taken from ZHISHE_MQTT_URL when that names the bridge user; otherwise a
    new one is generated and written, with the URL to use, to OUT/bridge.env (mode 0600).
    """
    import secrets

    from zhishe.core.config import get_settings
    from zhishe.iot.broker import write_mosquitto_config
    from zhishe.iot.mqtt import BrokerAddress

    configured = BrokerAddress.parse(get_settings().mqtt_url)
    reuse = configured.username == bridge_user and bool(configured.password)
    password = configured.password if reuse and configured.password else secrets.token_urlsafe(24)
    files = write_mosquitto_config(
        out=out,
        bridge_password=password,
        bridge_username=bridge_user,
        bind=bind,
        port=port,
        bridge_bind=bridge_bind,
        bridge_port=bridge_port,
        root=topic_root,
        data_dir=data_dir,
        max_queued_messages=max_queued,
    )
    for path in (files.config, files.password_file, files.device_acl, files.bridge_acl):
        console.print(f"wrote {path}")
    if not reuse:
        from zhishe.iot.broker import write_private

        env = write_private(files.config.parent / "bridge.env", f"ZHISHE_MQTT_URL={files.bridge_url}\n")
        console.print(f"wrote {env} (mode 0600): set ZHISHE_MQTT_URL from it for `zhishe iot mqtt-bridge`")
    else:
        console.print("the bridge's password is the one in ZHISHE_MQTT_URL")
    console.print(
        "start: mosquitto -c " + str(files.config) + "; after re-running, reload with kill -HUP <pid>"
    )


@iot_app.command("sites")
@handle_errors
def sites(kind: str = typer.Option(None, help="Only sites of this kind"), as_user: str = AS_USER) -> None:
    """List the sites you may see."""
    from rich.table import Table

    from zhishe.iot import service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        table = Table("id", "code", "kind", "name", "fed by", "consents")
        for site in service.list_sites(session=session, actor=actor, kind=kind, limit=100_000):
            consents = ",".join(
                n for n, on in (("detail", site.detail_consent), ("care", site.care_enrolled)) if on
            )
            table.add_row(str(site.id), site.code, site.kind, site.name, str(site.parent_id or ""), consents)
        console.print(table)


@iot_app.command("site-add")
@handle_errors
def site_add(
    code: str = typer.Argument(..., help="A unique code, e.g. H-3-1201"),
    kind: str = typer.Option(
        ..., help="household, building, transformer, charging_park, battery, pv or asset"
    ),
    name: str = typer.Option(..., help="A readable name"),
    parent: str = typer.Option(None, help="Code of the site that feeds this one (a household's transformer)"),
    limit_kw: float = typer.Option(None, "--limit-kw", help="A transformer's limit in kW"),
    org: str = typer.Option(None, help="Code of the running organisation (default: yours)"),
    as_user: str = AS_USER,
) -> None:
    """Create a site."""
    from zhishe.iot import service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        org_id = org_id_of(session, org)
        parent_id = None
        if parent:
            above = service.get_site_by_code(session=session, code=parent)
            if above is None:
                raise Invalid(f"there is no site {parent!r}", detail={"option": "--parent"})
            parent_id = above.id
        site = service.create_site(
            session=session,
            actor=actor,
            code=code,
            kind=kind,
            name=name,
            org_id=org_id,
            parent_id=parent_id,
            properties={"limit_kw": limit_kw} if limit_kw is not None else {},
        )
        console.print(f"site {site.id} {site.code} created")


@iot_app.command("device-add")
@handle_errors
def device_add(
    site: str = typer.Argument(..., help="Code of the site"),
    code: str = typer.Argument(..., help="A unique device code"),
    kind: str = typer.Option(
        ..., help="electricity_meter, water_meter, gas_meter, motion_sensor, door_sensor, …"
    ),
    name: str = typer.Option("", help="A readable name"),
    room: str = typer.Option("", help="Where it is (kitchen, front door)"),
    phase: str = typer.Option("", help="L1, L2 or L3 when known"),
    as_user: str = AS_USER,
) -> None:
    """Provision a device with the datastreams of its kind and print its token (shown once)."""
    from zhishe.iot import service

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        found = service.get_site_by_code(session=session, code=site)
        if found is None:
            raise Invalid(f"there is no site {site!r}", detail={"argument": "site"})
        new = service.create_device(
            session=session,
            actor=actor,
            site_id=found.id,
            code=code,
            kind=kind,
            name=name,
            room=room,
            phase=phase,
        )
        for stream in service.datastreams_of(session=session, device_id=new.device.id):
            console.print(f"datastream {stream.id} {stream.key} ({stream.kind}, {stream.unit_symbol})")
        console.print(f"token (shown once): {new.token}")


@iot_app.command("import")
@handle_errors
def import_devices(
    file: Path = typer.Argument(
        ..., help="CSV with columns site, code, kind and optionally name, room, phase"
    ),
    as_user: str = AS_USER,
) -> None:
    """Provision devices from a CSV file, all or nothing; prints each token (shown once)."""
    from zhishe.iot import service

    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Invalid(f"{file} is not a readable UTF-8 file ({exc})") from exc
    with transaction() as session:
        actor = resolve_actor(session, as_user)
        result = service.import_devices(session=session, actor=actor, text=text)
        for new in result.created:
            console.print(f"{new.device.code}\t{new.token}")
        console.print(f"{len(result.created)} devices provisioned")


@iot_app.command("rotate-token")
@handle_errors
def rotate_token(
    device: str = typer.Argument(..., help="Code of the device"), as_user: str = AS_USER
) -> None:
    """Give a device a new token (printed once); the old one stops working at once."""
    from sqlalchemy import select

    from zhishe.iot import service
    from zhishe.iot.models import Device

    with transaction() as session:
        actor = resolve_actor(session, as_user)
        found = session.scalars(select(Device).where(Device.code == device)).one_or_none()
        if found is None:
            raise Invalid(f"there is no device {device!r}", detail={"argument": "device"})
        new = service.rotate_token(session=session, actor=actor, device_id=found.id)
        console.print(f"new token (shown once): {new.token}")


@iot_app.command("flush")
@handle_errors
def flush() -> None:
    """Copy new readings to the lake history and update the rollups now (the server does it every few seconds)."""
    from zhishe.core.cli_support import maker
    from zhishe.iot import history

    session = maker()()
    try:
        result = history.flush(session=session)
    finally:
        session.close()
    console.print(
        f"{result.rows} readings flushed ({result.repeats} repeats dropped, {result.recovered} recovered)"
    )


@iot_app.command("simulate")
@handle_errors
def simulate_command(
    households: int = typer.Option(10, help="How many simulated households to send for"),
    rate: float = typer.Option(100.0, help="Readings per second in total (sets the meters' interval)"),
    via: str = typer.Option("http", help="http (batches to the server) or mqtt (to the broker)"),
    url: str = typer.Option(
        None, help="The server (default http://127.0.0.1:8000) or the broker's device listener"
    ),
    roster: Path = typer.Option(
        Path("var/simulator.json"), help="Where the simulated households' tokens are kept (mode 0600)"
    ),
    seed: int = typer.Option(0, help="Seed of the households and their faults"),
    duration: float = typer.Option(None, help="Simulated seconds to run (default: until Ctrl-C)"),
    speed: float = typer.Option(1.0, help="How many times faster than real time (replaying from --start)"),
    start: str = typer.Option(None, help="Simulated start time, ISO 8601 with offset (default now)"),
    leaks: int = typer.Option(0, help="Leaks to inject"),
    resets: int = typer.Option(0, help="Counter resets to inject"),
    inactive: int = typer.Option(0, help="Inactive residents to inject"),
    org: str = typer.Option(
        None, help="Code of the organisation the households belong to (when provisioning)"
    ),
    as_user: str = AS_USER,
) -> None:
    """Send realistic readings of N households (provisioned on first use) over HTTP or MQTT, with faults.

    The daily and weekly shape comes from real half-hourly demand data (England and Wales), scaled
    per household with noise; water, motion and door events follow each household's routine.
    """
    import json
    from datetime import datetime

    from zhishe.iot import simulate

    if via not in ("http", "mqtt"):
        raise Invalid("--via must be http or mqtt", detail={"option": "--via"})
    homes = simulate.load_roster(roster) if roster.exists() else []
    if len(homes) < households:
        with transaction() as session:
            actor = resolve_actor(session, as_user)
            org_id = org_id_of(session, org)
            homes = simulate.provision(
                session=session, actor=actor, households=households, org_id=org_id, seed=seed
            )
        simulate.save_roster(roster, homes)
        console.print(f"{households} households provisioned; their tokens are in {roster}")
    moment = datetime.fromisoformat(start) if start else None
    if moment is not None and moment.tzinfo is None:
        raise Invalid("--start needs a timezone offset", detail={"option": "--start"})
    faults = {"leaks": leaks, "resets": resets, "inactive": inactive}
    result = simulate.run(
        households=homes[:households],
        rate=rate,
        via=via,
        url=url,
        duration=duration,
        seed=seed,
        faults=faults,
        start=moment,
        speed=speed,
    )
    console.print_json(json.dumps(result.as_dict(), default=str))
