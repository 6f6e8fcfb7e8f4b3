"""The open-data tests' world: departments with datasets of every kind, opened through the API.

- ``air``: an hourly air-quality series, public columns plus a personal one (a reporter's phone);
- ``register``: a household register with personal columns, shared on conditions;
- ``visits``: daily clinic visits with a sensitive count, for differentially private releases.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from catalog.catalog_world import CatalogWorld
from zhishe.core import clock

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: A Friday before National Day, so that reply deadlines cross the holiday.
START = datetime(2026, 9, 18, 10, 0, tzinfo=SHANGHAI)

AIR_COLUMNS = [
    {"name": "station", "type": "string", "is_key": True, "classification": "public"},
    {"name": "observed_at", "type": "datetime", "is_key": True, "classification": "public"},
    {"name": "pm25", "type": "decimal", "unit": "µg/m³", "classification": "public"},
    {"name": "aqi", "type": "integer", "classification": "public"},
    {"name": "location", "type": "point", "classification": "public"},
    {"name": "reporter_phone", "type": "string", "classification": "personal"},
]

STATIONS = (("东四", 39.93, 116.42), ("天坛", 39.88, 116.41), ("奥体中心", 39.98, 116.39))


def air_csv(hours: int = 48, *, skip: set[int] | None = None) -> bytes:
    """``hours`` hourly readings per station from 2026-09-01 00:00 (Shanghai), minus ``skip`` hours."""
    lines = ["station,observed_at,pm25,aqi,location,reporter_phone"]
    for hour in range(hours):
        if skip and hour in skip:
            continue
        for i, (name, lat, lon) in enumerate(STATIONS):
            pm25 = 20 + (hour * 7 + i * 13) % 90
            day, hh = divmod(hour, 24)
            lines.append(
                f"{name},2026-09-{1 + day:02d}T{hh:02d}:00:00+08:00,{pm25}.5,{pm25 + 15},"
                f'"{lat},{lon}",1380000{hour:04d}'
            )
    return ("\n".join(lines) + "\n").encode()


def air_rows(hours: int = 48) -> list[dict[str, Any]]:
    """The rows an ``air`` release holds, read back from the CSV it was made from (release order:
    by time), with the point as ``{"lat", "lon"}``."""
    rows = []
    for line in csv.DictReader(io.StringIO(air_csv(hours).decode())):
        lat, lon = (float(x) for x in line["location"].split(","))
        rows.append(
            {
                "station": line["station"],
                "observed_at": datetime.fromisoformat(line["observed_at"]),
                "pm25": float(line["pm25"]),
                "aqi": int(line["aqi"]),
                "location": {"lat": lat, "lon": lon},
            }
        )
    return rows


REGISTER_COLUMNS = [
    {"name": "household_id", "type": "string", "is_key": True, "classification": "internal"},
    {"name": "building_id", "type": "string", "classification": "internal"},
    {"name": "head_name", "type": "string", "classification": "personal"},
    {"name": "head_gender", "type": "string", "classification": "personal"},
    {"name": "head_birth_year", "type": "integer", "classification": "personal"},
    {"name": "household_size", "type": "integer", "classification": "internal"},
    {"name": "receives_subsidy", "type": "boolean", "classification": "sensitive"},
]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def register_csv(households: int = 120, *, oldest: int | None = 1929) -> bytes:
    """Households in four buildings; one head of household born in ``oldest`` (a 97-year-old)."""
    lines = ["household_id,building_id,head_name,head_gender,head_birth_year,household_size,receives_subsidy"]
    for n in range(households):
        building = f"B0{1 + n % 4}"
        year = 1950 + (n * 7) % 50
        if oldest is not None and n == 0:
            year = oldest
        lines.append(
            f"H{n:04d},{building},{SURNAMES[n % len(SURNAMES)]}某{n},{'FM'[n % 2]},{year},{1 + n % 5},"
            f"{'true' if n % 3 == 0 else 'false'}"
        )
    return ("\n".join(lines) + "\n").encode()


REGISTER_POLICY: dict[str, Any] = {
    "columns": {
        "household_id": "pseudonymise",
        "head_name": "drop",
        "head_gender": "keep",
        "head_birth_year": "keep",
        "receives_subsidy": "keep",
    },
    "model": {
        "type": "k_anonymity",
        "k": 5,
        "quasi_identifiers": ["building_id", "head_gender", "head_birth_year", "household_size"],
        "sensitive": ["receives_subsidy"],
        "l": 2,
    },
}

VISITS_COLUMNS = [
    {"name": "visit_date", "type": "date", "is_key": True, "classification": "internal"},
    {"name": "syndrome", "type": "string", "is_key": True, "classification": "internal"},
    {"name": "visits", "type": "integer", "classification": "sensitive"},
]


def visits_csv(days: int = 30) -> bytes:
    lines = ["visit_date,syndrome,visits"]
    for day in range(days):
        for i, syndrome in enumerate(("ili", "gastro")):
            lines.append(f"2026-08-{1 + day:02d},{syndrome},{(day * 3 + i * 5) % 12}")
    return ("\n".join(lines) + "\n").encode()


VISITS_POLICY: dict[str, Any] = {
    "columns": {"visit_date": {"rule": "generalise", "method": "date", "unit": "month"}},
    "model": {
        "type": "dp",
        "epsilon": 0.5,
        "dimensions": ["visit_date", "syndrome"],
        "measures": [{"kind": "sum", "column": "visits", "lower": 0, "upper": 20}],
        "dimension_values": {"visit_date": ["2026-08"], "syndrome": ["ili", "gastro"]},
    },
}


class OpenWorld(CatalogWorld):
    """The environment bureau owns ``air``, the police ``register``, the clinic ``visits``."""

    def __init__(self, world: Any, db: Any, client: Any) -> None:
        super().__init__(world, db, client)
        self.now = START
        clock.set_clock(lambda: self.now)
        self.police = world.org("dept-police", name="公安分局")
        self.clinic = world.org("clinic-east", kind="clinic", name="东区社区卫生服务中心")
        self.users["police.steward"] = world.user("police.steward", self.police, role="steward")
        self.users["clinic.steward"] = world.user("clinic.steward", self.clinic, role="steward")
        self.users["bureau.analyst"] = world.user("bureau.analyst", self.bureau, role="analyst")

    def at(self, when: datetime) -> None:
        """Move the platform clock."""
        self.now = when

    # -- making data --------------------------------------------------------------------------------

    def air(self, hours: int = 48, **extra: Any) -> None:
        self.create(
            "air", columns=AIR_COLUMNS, accrual_periodicity="hourly", time_column="observed_at", **extra
        )
        assert self.upload("air", air_csv(hours)).status_code == 201

    def register(self, households: int = 120, oldest: int | None = 1929) -> None:
        self.create(
            "register",
            who="police.steward",
            columns=REGISTER_COLUMNS,
            sharing_class="conditional",
            title_zh="户籍登记",
            title_en="Household register",
            theme="population",
        )
        assert (
            self.upload("register", register_csv(households, oldest=oldest), who="police.steward").status_code
            == 201
        )

    def visits(self) -> None:
        self.create(
            "visits",
            who="clinic.steward",
            columns=VISITS_COLUMNS,
            sharing_class="conditional",
            title_zh="门诊就诊",
            title_en="Clinic visits",
            theme="health",
            time_column="visit_date",
        )
        assert self.upload("visits", visits_csv(), who="clinic.steward").status_code == 201

    # -- opening it ---------------------------------------------------------------------------------

    def configure(self, slug: str, who: str = "env.steward", **settings: Any) -> Any:
        return self.client.put(
            f"/api/v1/opendata/datasets/{slug}/settings", json=settings, headers=self.h(who)
        )

    def draft(self, slug: str, who: str = "env.steward", **body: Any) -> Any:
        return self.client.post(f"/api/v1/opendata/datasets/{slug}/drafts", json=body, headers=self.h(who))

    def publish(self, release_id: int, who: str = "env.steward", note: str = "") -> Any:
        return self.client.post(
            f"/api/v1/opendata/releases/{release_id}/publish", json={"note": note}, headers=self.h(who)
        )

    def release(self, slug: str, who: str = "env.steward", note: str = "", **draft: Any) -> dict[str, Any]:
        """Draft and publish a release; returns the published release."""
        made = self.draft(slug, who=who, **draft)
        assert made.status_code == 201, made.text
        done = self.publish(made.json()["id"], who=who, note=note)
        assert done.status_code == 200, done.text
        return dict(done.json())

    def open_air(self, hours: int = 48) -> dict[str, Any]:
        """``air`` created and released with its phone column dropped."""
        self.air(hours)
        configured = self.configure(
            "air",
            policy={"columns": {"reporter_phone": "drop"}},
            order_by=["observed_at"],
            chart={"kind": "line", "x": "observed_at", "y": "pm25"},
        )
        assert configured.status_code == 200, configured.text
        return self.release("air")

    def query(self, slug: str = "air", fmt: str = "json", **params: Any) -> Any:
        return self.client.get(f"/opendata/api/v1/datasets/{slug}/query.{fmt}", params=params)
