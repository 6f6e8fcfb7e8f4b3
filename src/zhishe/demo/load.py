"""Loading the demo community into a platform: organisations, users and datasets, through the
same services and the same CSV import path that people use."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select

from zhishe.catalog import flows
from zhishe.catalog import service as catalog
from zhishe.catalog.schemas import ColumnIn, DatasetCreate
from zhishe.core.accounts import service as accounts
from zhishe.core.accounts.models import Organisation
from zhishe.core.accounts.schemas import OrgCreate, UserCreate
from zhishe.core.auth import system_actor
from zhishe.core.cli_support import console, maker
from zhishe.core.errors import Conflict
from zhishe.demo import DEMO_PASSWORD, build_community
from zhishe.demo.exchange import seed_exchange
from zhishe.demo.iot import seed_iot
from zhishe.demo.model import Community
from zhishe.demo.opendata import seed_opendata
from zhishe.demo.participation import seed_participation
from zhishe.demo.services import seed_services

__all__ = ["load_demo"]


def load_demo(*, seed: int = 2026, households: int = 2000, quiet: bool = False) -> Community:
    """Create the demo community's organisations, users and datasets; import every dataset's CSV."""
    community = build_community(seed, households=households)
    actor = system_actor("demo")
    sessions = maker()
    with sessions.begin() as session:
        if session.scalar(
            select(Organisation.id).where(Organisation.code == community.organisations[0].code)
        ):
            raise Conflict(
                "the demo community is already loaded in this database; use a fresh ZHISHE_DATA_DIR"
            )
        org_ids: dict[str, int] = {}
        for org in community.organisations:
            created = accounts.create_org(
                session=session,
                actor=actor,
                org_in=OrgCreate(code=org.code, name_zh=org.name_zh, name_en=org.name_en, kind=org.kind),
            )  # type: ignore[arg-type]
            org_ids[org.code] = created.id
        for user in community.users:
            accounts.create_user(
                session=session,
                actor=actor,
                user_in=UserCreate(
                    username=user.username,
                    display_name=user.display_name,
                    email=user.email,
                    role=user.role,
                    org_id=org_ids[user.org_code],
                    password=DEMO_PASSWORD,
                ),
            )  # type: ignore[arg-type]
        for ds in community.datasets:
            catalog.create_dataset(
                session=session,
                actor=actor,
                dataset_in=DatasetCreate(
                    slug=ds.slug,
                    owner_org_id=org_ids[ds.owner],
                    title_zh=ds.title_zh,
                    title_en=ds.title_en,
                    description_zh=ds.description_zh,
                    description_en=ds.description_en,
                    theme=ds.theme,
                    keywords=ds.keywords,
                    contact_name=ds.contact,
                    licence=ds.licence,
                    accrual_periodicity=ds.cadence,
                    temporal_start=ds.temporal_coverage[0],
                    temporal_end=ds.temporal_coverage[1],
                    spatial=ds.spatial_coverage,
                    sharing_class=ds.sharing_class,  # type: ignore[arg-type]
                    legal_basis=ds.legal_basis or "",
                    sharing_conditions=ds.sharing_conditions or "",
                    time_column=ds.time_column,
                    source=ds.source,
                    columns=[ColumnIn.from_spec(c) for c in ds.columns],
                ),
            )
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console, disable=quiet) as progress:
        task = progress.add_task("importing demo datasets", total=len(community.datasets))
        for ds in community.datasets:
            path = Path(tmp) / f"{ds.slug}.csv"
            path.write_bytes(ds.to_csv_bytes())
            report = flows.import_path(
                maker=sessions,
                actor=actor,
                dataset=ds.slug,
                path=path,
                mode="append",
                note="demo community",
                filename=path.name,
            )
            if report.status != "done":
                raise Conflict(f"demo dataset {ds.slug} did not import: {report.message}")
            progress.advance(task)
    seed_exchange(sessions)
    seed_opendata(sessions, community)
    seed_iot(sessions)
    seed_participation(sessions, community, seed)
    seed_services(sessions, seed)
    if not quiet:
        _print_logins(community)
    return community


def _print_logins(community: Community) -> None:
    table = Table("username", "organisation", "role", title=f"Demo logins (password: {DEMO_PASSWORD})")
    names = {o.code: o.name_zh for o in community.organisations}
    for user in community.users:
        table.add_row(user.username, names[user.org_code], user.role)
    console.print(table)
    console.print(f"[bold]Password for every demo login:[/] {DEMO_PASSWORD}")
