"""Datasets of air, energy and water: hourly air quality, building energy, district water supply."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from zhishe.catalog.types import Classification as C
from zhishe.catalog.types import ColumnType as T
from zhishe.demo._util import (
    COMMUNITY_AREA,
    clamp,
    column,
    local_datetime,
    month_starts_before,
    rng_for,
    seasonal,
    synthetic_source,
    table_from_records,
)
from zhishe.demo.model import Building, DemoDataset, Household
from zhishe.demo.people import CENTRE, steward_contact

__all__ = ["AIR_GAPS", "WATER_LEAK", "build_air_quality", "build_energy", "build_water", "iaqi"]

# HJ 633-2012 breakpoints: IAQI levels and the concentration limits (µg/m³) of each pollutant.
# PM2.5 and PM10 use the 24-hour limits, NO2 and O3 the 1-hour limits.
_IAQI = (0, 50, 100, 150, 200, 300, 400, 500)
_LIMITS = {
    "pm25": (0, 35, 75, 115, 150, 250, 350, 500),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
    "no2": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "o3": (0, 160, 200, 300, 400, 800, 1000, 1200),
}
_PRIMARY = {"pm25": "PM2.5", "pm10": "PM10", "no2": "NO2", "o3": "O3"}


def iaqi(pollutant: str, concentration: float) -> int:
    """The individual air quality index of one concentration (HJ 633-2012, linear interpolation)."""
    limits = _LIMITS[pollutant]
    if concentration >= limits[-1]:
        return 500
    for i in range(1, len(limits)):
        if concentration <= limits[i]:
            low, high = limits[i - 1], limits[i]
            value = _IAQI[i - 1] + (_IAQI[i] - _IAQI[i - 1]) * (concentration - low) / (high - low)
            return math.ceil(value)
    return 500  # pragma: no cover - unreachable: the last limit is checked first


#: Deliberate holes in the air-quality series, so that quality profiles have something to find:
#: (station, first day of the window counted from 0, first local hour, hours, what is missing).
AIR_GAPS: tuple[tuple[str, int, int, int, str], ...] = (
    ("AQ2", 19, 10, 30, "rows"),  # power failure: no rows at all
    ("AQ1", 40, 9, 6, "rows"),  # scheduled maintenance
    ("AQ1", 11, 13, 8, "o3"),  # ozone analyser calibration: nulls
    ("AQ2", 49, 2, 4, "pm10"),  # PM10 sampler fault: nulls
)

_STATIONS = (
    ("AQ1", "阳光社区站", "Sunshine Community station", 0.6, -1.2, 1.0, 1.0),
    ("AQ2", "和平街交通站", "Heping Street roadside station", -2.6, 1.0, 1.12, 1.5),
)


def _missing(station: str, day_index: int, hour: int) -> set[str]:
    """What the gaps remove at one station-hour: ``{"rows"}`` or pollutant names."""
    what: set[str] = set()
    for gap_station, first_day, first_hour, hours, kind in AIR_GAPS:
        offset = (day_index - first_day) * 24 + hour - first_hour
        if gap_station == station and 0 <= offset < hours:
            what.add(kind)
    return what


def build_air_quality(seed: int, today: date, days: int = 60) -> DemoDataset:
    """Hourly PM2.5, PM10, NO2, O3 and AQI at two stations over ``days`` days, with gaps (open)."""
    rng = rng_for(seed, "air")
    first = today - timedelta(days=days)
    records: list[dict[str, Any]] = []
    regional = 0.0  # log-deviation of the regional particle level: multi-day episodes
    for d in range(days):
        day = first + timedelta(days=d)
        mean_pm = 38.0 * seasonal(day, 15, 0.35)
        ozone_season = seasonal(day, 175, 0.7)
        for hour in range(24):
            regional = 0.965 * regional + rng.gauss(0, 0.11)
            night = 1.0 + 0.18 * math.cos(2 * math.pi * (hour - 2) / 24)
            sun = max(0.0, math.cos(2 * math.pi * (hour - 15) / 24)) ** 2
            rush = 1.0 + 0.45 * (math.exp(-((hour - 8) ** 2) / 2) + math.exp(-((hour - 18.5) ** 2) / 3))
            for sid, _, _, _, _, pm_factor, traffic in _STATIONS:
                gone = _missing(sid, d, hour)
                if "rows" in gone:
                    continue
                pm25 = mean_pm * math.exp(regional) * night * pm_factor * rng.uniform(0.92, 1.08)
                pm10 = pm25 * clamp(rng.gauss(1.55, 0.12), 1.2, 2.2) * (1.0 + 0.1 * (traffic - 1))
                stagnation = math.exp(0.5 * regional)
                no2 = 28 * traffic * rush * stagnation * rng.uniform(0.85, 1.15)
                o3 = (12 + 150 * sun * ozone_season / stagnation) / traffic**0.4 * rng.uniform(0.9, 1.1)
                values: dict[str, float | None] = {
                    "pm25": float(round(pm25)),
                    "pm10": float(round(pm10)),
                    "no2": float(round(no2)),
                    "o3": float(round(o3)),
                }
                for pollutant in gone:
                    values[pollutant] = None
                indices = {p: iaqi(p, v) for p, v in values.items() if v is not None}
                aqi = max(indices.values())
                worst = [_PRIMARY[p] for p, v in indices.items() if v == aqi]
                records.append(
                    {
                        "station_id": sid,
                        "observed_at": local_datetime(day, hour),
                        **values,
                        "aqi": aqi,
                        "primary_pollutant": ",".join(worst) if aqi > 50 else None,
                    }
                )
    columns = [
        column("station_id", T.STRING, C.PUBLIC, "Monitoring station: AQ1 community, AQ2 roadside", key=True),
        column("observed_at", T.DATETIME, C.PUBLIC, "Start of the hour the values average", key=True),
        column("pm25", T.DECIMAL, C.PUBLIC, "PM2.5, 1-hour mean", unit="µg/m³"),
        column("pm10", T.DECIMAL, C.PUBLIC, "PM10, 1-hour mean", unit="µg/m³"),
        column("no2", T.DECIMAL, C.PUBLIC, "Nitrogen dioxide, 1-hour mean", unit="µg/m³"),
        column("o3", T.DECIMAL, C.PUBLIC, "Ozone, 1-hour mean", unit="µg/m³"),
        column("aqi", T.INTEGER, C.PUBLIC, "Air quality index (HJ 633-2012) of the hourly values"),
        column("primary_pollutant", T.STRING, C.PUBLIC, "Pollutant(s) with the highest IAQI when AQI > 50"),
    ]
    station_text = "；".join(
        f"{sid} {zh}（{CENTRE[0] + north * 0.0009:.4f}, {CENTRE[1] + east * 0.0012:.4f}）"
        for sid, zh, _, north, east, _, _ in _STATIONS
    )
    return DemoDataset(
        slug="air-quality-hourly",
        owner="dept-env",
        title_zh="空气质量逐时监测数据",
        title_en="Hourly air quality",
        description_zh=(
            f"近{days}天社区两个监测站（{station_text}）的PM2.5、PM10、二氧化氮、臭氧小时浓度及AQI。"
            "其中有停电和维护造成的缺测时段，以及个别仪器校准期间的空值。"
        ),
        description_en=(
            f"Hourly PM2.5, PM10, NO2 and O3 and the AQI at the community station (AQ1) and a roadside "
            f"station (AQ2) over the last {days} days. A power failure and maintenance left hours "
            "without rows, and analyser calibrations left some values empty."
        ),
        theme="environment",
        keywords=["空气质量", "PM2.5", "AQI", "air quality", "ozone", "monitoring"],
        cadence="hourly",
        sharing_class="unconditional",
        licence="CC-BY-4.0",
        contact=steward_contact("dept-env"),
        temporal_coverage=(first, today - timedelta(days=1)),
        spatial_coverage=COMMUNITY_AREA,
        time_column="observed_at",
        source=synthetic_source(
            seed, "levels and daily cycles modelled on Beijing urban stations; AQI per HJ 633"
        ),
        columns=columns,
        rows=table_from_records(columns, records),
    )


# Relative monthly household electricity (air conditioning in summer, lighting in winter) and gas.
_ELECTRICITY = (1.15, 1.1, 0.95, 0.85, 0.9, 1.1, 1.4, 1.45, 1.05, 0.9, 0.95, 1.1)
_GAS = (1.5, 1.4, 1.2, 1.0, 0.85, 0.75, 0.7, 0.7, 0.8, 0.95, 1.2, 1.4)
# District heating (15 Nov - 15 Mar), GJ per m² of floor area in each month.
_HEAT = (0.105, 0.085, 0.04, 0, 0, 0, 0, 0, 0, 0, 0.045, 0.095)


def build_energy(
    seed: int, today: date, buildings: tuple[Building, ...], households: tuple[Household, ...]
) -> DemoDataset:
    """Monthly electricity, gas and district heat of every building, 24 months (operator, open)."""
    rng = rng_for(seed, "energy")
    months = month_starts_before(today, 24)
    winters = {m.year if m.month >= 7 else m.year - 1 for m in months}
    winter_severity = {w: rng.uniform(0.9, 1.12) for w in sorted(winters)}
    occupants = {b.id: [h for h in households if h.building_id == b.id] for b in buildings}
    records: list[dict[str, Any]] = []
    for b in buildings:
        mine = occupants[b.id]
        people = sum(h.size for h in mine)
        common = 1.08 if b.floors > 6 else 1.0  # lifts, pumps and corridor lighting
        insulation = 1.25 if b.year_built < 1998 else 1.0 if b.year_built < 2009 else 0.85
        for m in months:
            trend = 1.0 + 0.02 * ((m - months[0]).days / 365)
            winter = winter_severity[m.year if m.month >= 7 else m.year - 1]
            kwh = (150 * len(mine) + 45 * people) * _ELECTRICITY[m.month - 1] * common * trend
            gas = (12 * len(mine) + 4 * people) * _GAS[m.month - 1]
            heat = b.capacity * 75 * _HEAT[m.month - 1] * insulation * winter
            records.append(
                {
                    "building_id": b.id,
                    "month": m,
                    "occupied_flats": len(mine),
                    "electricity_kwh": float(round(kwh * rng.uniform(0.97, 1.03))),
                    "gas_m3": float(round(gas * rng.uniform(0.95, 1.05))),
                    "heat_gj": round(heat * rng.uniform(0.96, 1.04), 1),
                }
            )
    columns = [
        column("building_id", T.STRING, C.PUBLIC, "Building code", key=True),
        column("month", T.DATE, C.PUBLIC, "First day of the month", key=True),
        column("occupied_flats", T.INTEGER, C.PUBLIC, "Flats with a registered household", unit="flats"),
        column(
            "electricity_kwh", T.DECIMAL, C.PUBLIC, "Electricity, households and common areas", unit="kWh"
        ),
        column("gas_m3", T.DECIMAL, C.PUBLIC, "Piped natural gas", unit="m³"),
        column("heat_gj", T.DECIMAL, C.PUBLIC, "District heat delivered (season 15 Nov - 15 Mar)", unit="GJ"),
    ]
    return DemoDataset(
        slug="building-energy-monthly",
        owner="operator",
        title_zh="楼栋月度能耗",
        title_en="Monthly building energy use",
        description_zh="近24个月每栋楼的用电量、燃气用量和集中供热量。夏季空调用电高，供热季为11月15日至次年3月15日。",
        description_en=(
            "Electricity, gas and district heat of every building over the last 24 months. Electricity "
            "peaks with summer air conditioning; the heating season runs from 15 November to 15 March."
        ),
        theme="energy",
        keywords=["能耗", "用电量", "集中供热", "energy", "electricity", "district heating"],
        cadence="monthly",
        sharing_class="unconditional",
        licence="CC-BY-4.0",
        contact=steward_contact("operator"),
        temporal_coverage=(months[0], today.replace(day=1) - timedelta(days=1)),
        spatial_coverage=COMMUNITY_AREA,
        time_column="month",
        source=synthetic_source(seed, "per-household use and heat intensities typical of Beijing housing"),
        columns=columns,
        rows=table_from_records(columns, records),
    )


_DMAS = (
    ("DMA-N", "北区计量分区", (0, 1)),
    ("DMA-C", "中区计量分区", (2,)),
    ("DMA-S", "南区计量分区", (3, 4)),
)
#: The leak hidden in the water data: (DMA, first day counted back from today, days until repaired, m³/h).
WATER_LEAK = ("DMA-S", 75, 11, 3.5)


def build_water(
    seed: int, today: date, buildings: tuple[Building, ...], households: tuple[Household, ...]
) -> DemoDataset:
    """A year of daily inflow, minimum night flow and pressure of three metered areas (conditional)."""
    rng = rng_for(seed, "water")
    row_of = {b.id: (int(b.id[1:]) - 1) // 5 for b in buildings}
    records: list[dict[str, Any]] = []
    leak_dma, leak_back, leak_days, leak_rate = WATER_LEAK
    leak_start = today - timedelta(days=leak_back)
    for dma_id, _, rows in _DMAS:
        served = [h for h in households if row_of[h.building_id] in rows]
        people = sum(h.size for h in served)
        background = 0.9 + 0.0006 * people  # m³/h of unavoidable night use and small leaks
        for n in range(365, 0, -1):
            day = today - timedelta(days=n)
            leaking = dma_id == leak_dma and leak_start <= day < leak_start + timedelta(days=leak_days)
            leak = leak_rate * (1 + 0.1 * (day - leak_start).days) if leaking else 0.0
            use = people * 0.13 * seasonal(day, 200, 0.12) * (1.05 if day.weekday() >= 5 else 1.0)
            night = background * rng.uniform(0.9, 1.1) + leak
            records.append(
                {
                    "dma_id": dma_id,
                    "supply_date": day,
                    "households_served": len(served),
                    "inflow_m3": round(use * rng.uniform(0.95, 1.05) + 24 * (night - background * 0.5), 1),
                    "min_night_flow_m3h": round(night, 2),
                    "avg_pressure_kpa": round(rng.gauss(285, 4) - 6 * leak, 1),
                }
            )
    columns = [
        column("dma_id", T.STRING, C.INTERNAL, "District metered area", key=True),
        column("supply_date", T.DATE, C.INTERNAL, "Day of supply", key=True),
        column("households_served", T.INTEGER, C.INTERNAL, "Households in the area", unit="households"),
        column("inflow_m3", T.DECIMAL, C.INTERNAL, "Water fed into the area during the day", unit="m³"),
        column(
            "min_night_flow_m3h", T.DECIMAL, C.INTERNAL, "Lowest flow between 02:00 and 04:00", unit="m³/h"
        ),
        column("avg_pressure_kpa", T.DECIMAL, C.INTERNAL, "Mean pressure at the area inlet", unit="kPa"),
    ]
    return DemoDataset(
        slug="water-supply-dma-daily",
        owner="dept-water",
        title_zh="供水计量分区日供水量",
        title_en="Daily water supply by metered area",
        description_zh="近一年社区3个供水计量分区（DMA）的日供水量、夜间最小流量和进水压力，可用于漏损分析。",
        description_en=(
            "Daily inflow, minimum night flow and inlet pressure of the community's three district "
            "metered areas over the last year, for leakage analysis."
        ),
        theme="urban-management",
        keywords=["供水", "漏损", "夜间最小流量", "water supply", "leakage", "DMA"],
        cadence="daily",
        sharing_class="conditional",
        sharing_conditions=(
            "供水管网运行数据涉及关键信息基础设施，仅向承担规划、应急和监管职责的部门共享，不得公开。 / "
            "Network operating data concerns critical infrastructure: shared only with departments "
            "responsible for planning, emergencies or supervision, and never published."
        ),
        licence="internal",
        contact=steward_contact("dept-water"),
        temporal_coverage=(today - timedelta(days=365), today - timedelta(days=1)),
        spatial_coverage=COMMUNITY_AREA,
        time_column="supply_date",
        source=synthetic_source(seed, "about 130 litres per person per day plus background leakage"),
        columns=columns,
        rows=table_from_records(columns, records),
    )
