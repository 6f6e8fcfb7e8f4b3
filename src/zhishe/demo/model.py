"""The shapes of the demonstration community: organisations, users, buildings, households, datasets.

All are frozen dataclasses. A `DemoDataset` carries its DCAT-style metadata, its typed columns
(`zhishe.catalog.types.ColumnSpec`) and its rows as an Arrow table whose schema is exactly
`arrow_schema(columns)`; `to_csv_bytes()` renders the rows the way the platform's CSV import
reads them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal, get_args

import pyarrow as pa

from zhishe.catalog.types import ColumnSpec, ColumnType, arrow_schema
from zhishe.core.auth import OrgKind, Role

__all__ = [
    "CADENCES",
    "SHARING_CLASSES",
    "THEMES",
    "Building",
    "Cadence",
    "Community",
    "DemoDataset",
    "DemoUser",
    "Household",
    "Organisation",
    "SharingClass",
    "Theme",
]

#: 无条件共享 / 有条件共享 / 不予共享 (《政务数据共享条例》).
SharingClass = Literal["unconditional", "conditional", "not_shared"]
#: The small fixed theme vocabulary of the demo catalogue.
Theme = Literal[
    "population",
    "energy",
    "environment",
    "transport",
    "public-safety",
    "health",
    "urban-management",
    "economy",
]
#: DCAT ``accrualPeriodicity`` short names (EU frequency vocabulary, lower-cased).
Cadence = Literal["hourly", "daily", "weekly", "monthly", "quarterly", "annual", "irregular", "never"]

SHARING_CLASSES: tuple[str, ...] = get_args(SharingClass)
THEMES: tuple[str, ...] = get_args(Theme)
CADENCES: tuple[str, ...] = get_args(Cadence)


@dataclass(frozen=True, slots=True)
class Organisation:
    """A member organisation of the demo platform; ``code`` is its stable slug."""

    code: str
    name_zh: str
    name_en: str
    kind: OrgKind


@dataclass(frozen=True, slots=True)
class DemoUser:
    """A demo login: one organisation, one role, the shared demo password."""

    username: str
    display_name: str
    org_code: str
    role: Role
    email: str
    household_id: str | None = None


@dataclass(frozen=True, slots=True)
class Building:
    """A residential building of the community."""

    id: str
    name_zh: str
    name_en: str
    lat: float
    lon: float
    floors: int
    units: int
    flats_per_landing: int
    year_built: int

    @property
    def capacity(self) -> int:
        """How many flats the building has."""
        return self.floors * self.units * self.flats_per_landing


@dataclass(frozen=True, slots=True)
class Household:
    """A registered household living in one flat."""

    id: str
    building_id: str
    unit: int
    floor: int
    room: str
    size: int
    head_name: str
    head_gender: Literal["M", "F"]
    head_birth_year: int
    phone_masked: str
    children_0_14: int
    elderly_birth_years: tuple[int, ...]
    registered_on: date
    receives_subsidy: bool

    @property
    def is_elderly(self) -> bool:
        """Whether at least one member is 60 or older."""
        return bool(self.elderly_birth_years)

    @property
    def elderly_living_alone(self) -> bool:
        """A one-person household of someone 60 or older."""
        return self.size == 1 and self.is_elderly


@dataclass(frozen=True, slots=True)
class DemoDataset:
    """One catalogue entry of the demo with its rows.

    ``temporal_coverage`` is (first day, last day), both inclusive. ``legal_basis`` is required
    for ``not_shared`` datasets and ``sharing_conditions`` for ``conditional`` ones. Datetime
    values are written to CSV at ``csv_utc_offset`` (China time unless the data is foreign).
    """

    slug: str
    owner: str
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str
    theme: Theme
    keywords: list[str]
    cadence: Cadence
    sharing_class: SharingClass
    licence: str
    contact: str
    temporal_coverage: tuple[date, date]
    spatial_coverage: str
    time_column: str | None
    source: str
    columns: list[ColumnSpec]
    rows: pa.Table = field(repr=False)
    legal_basis: str | None = None
    sharing_conditions: str | None = None
    csv_utc_offset: timedelta = timedelta(hours=8)

    def __post_init__(self) -> None:
        """Refuse metadata that contradicts itself or rows that do not match the columns."""
        where = f"demo dataset {self.slug!r}"
        if self.sharing_class not in SHARING_CLASSES:
            raise ValueError(f"{where}: unknown sharing class {self.sharing_class!r}")
        if self.theme not in THEMES:
            raise ValueError(f"{where}: unknown theme {self.theme!r}")
        if self.cadence not in CADENCES:
            raise ValueError(f"{where}: unknown cadence {self.cadence!r}")
        if self.sharing_class == "not_shared" and not self.legal_basis:
            raise ValueError(f"{where}: a not_shared dataset needs a legal basis")
        if self.sharing_class == "conditional" and not self.sharing_conditions:
            raise ValueError(f"{where}: a conditional dataset needs its sharing conditions")
        names = [c.name for c in self.columns]
        if self.time_column is not None and self.time_column not in names:
            raise ValueError(f"{where}: time column {self.time_column!r} is not a column")
        if not self.rows.schema.equals(arrow_schema(self.columns)):
            raise ValueError(f"{where}: rows schema {self.rows.schema} does not match its columns")
        if self.temporal_coverage[0] > self.temporal_coverage[1]:
            raise ValueError(f"{where}: temporal coverage ends before it starts")

    @property
    def key_columns(self) -> list[str]:
        """Names of the columns that together identify a row."""
        return [c.name for c in self.columns if c.is_key]

    @property
    def csv_rows_hint(self) -> int:
        """How many data rows (header excluded) ``to_csv_bytes()`` writes."""
        return int(self.rows.num_rows)

    def to_csv_bytes(self) -> bytes:
        """The rows as UTF-8 CSV: a header of column names, ISO 8601 values, points as ``lat,lon``."""
        offset = timezone(self.csv_utc_offset)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c.name for c in self.columns])
        formatters = [_formatter(c.type, offset) for c in self.columns]
        columns = [self.rows.column(c.name).to_pylist() for c in self.columns]
        for values in zip(*columns, strict=True):
            writer.writerow(["" if v is None else fmt(v) for fmt, v in zip(formatters, values, strict=True)])
        return buffer.getvalue().encode("utf-8")


def _format_float(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _formatter(column_type: ColumnType, offset: timezone) -> Callable[[Any], str]:
    """A function turning one Arrow-decoded value of ``column_type`` into CSV text."""

    def fmt_datetime(value: datetime) -> str:
        return value.replace(tzinfo=value.tzinfo or UTC).astimezone(offset).isoformat()

    def fmt_point(value: dict[str, float]) -> str:
        return f"{_format_float(value['lat'])},{_format_float(value['lon'])}"

    table: dict[ColumnType, Callable[[Any], str]] = {
        ColumnType.STRING: str,
        ColumnType.INTEGER: str,
        ColumnType.DECIMAL: _format_float,
        ColumnType.BOOLEAN: lambda v: "true" if v else "false",
        ColumnType.DATE: date.isoformat,
        ColumnType.DATETIME: fmt_datetime,
        ColumnType.POINT: fmt_point,
    }
    return table[ColumnType(column_type)]


@dataclass(frozen=True, slots=True)
class Community:
    """The whole demonstration world built from one seed."""

    seed: int
    today: date
    name_zh: str
    name_en: str
    district_zh: str
    district_en: str
    organisations: tuple[Organisation, ...]
    users: tuple[DemoUser, ...]
    buildings: tuple[Building, ...]
    households: tuple[Household, ...]
    datasets: tuple[DemoDataset, ...]

    def organisation(self, code: str) -> Organisation:
        """The organisation with ``code`` (KeyError if none)."""
        for org in self.organisations:
            if org.code == code:
                return org
        raise KeyError(f"no demo organisation {code!r}")

    def dataset(self, slug: str) -> DemoDataset:
        """The dataset with ``slug`` (KeyError if none)."""
        for dataset in self.datasets:
            if dataset.slug == slug:
                return dataset
        raise KeyError(f"no demo dataset {slug!r}")
