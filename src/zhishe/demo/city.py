"""Datasets of the streets and services: 12345 hotline, street lights, waste, parking, facilities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from zhishe.catalog.types import Classification as C
from zhishe.catalog.types import ColumnType as T
from zhishe.demo._util import (
    CHINA_TZ,
    COMMUNITY_AREA,
    clamp,
    column,
    local_datetime,
    lognormal_hours,
    rng_for,
    seasonal,
    synthetic_source,
    table_from_records,
)
from zhishe.demo.model import Building, DemoDataset, Household
from zhishe.demo.names import masked_phone
from zhishe.demo.people import CENTRE, steward_contact

__all__ = [
    "FACILITIES",
    "Facility",
    "build_facilities",
    "build_hotline",
    "build_parking",
    "build_street_lights",
    "build_waste",
]


@dataclass(frozen=True, slots=True)
class Facility:
    """A community facility at a fixed offset (in ~100 m grid steps) from the community centre."""

    id: str
    name_zh: str
    name_en: str
    category: str
    north: float
    east: float
    opening_hours: str
    wheelchair_accessible: bool
    capacity: int = 0

    @property
    def lat(self) -> float:
        """Latitude, WGS 84."""
        return round(CENTRE[0] + self.north * 0.0009, 6)

    @property
    def lon(self) -> float:
        """Longitude, WGS 84."""
        return round(CENTRE[1] + self.east * 0.0012, 6)


# fmt: off
FACILITIES: tuple[Facility, ...] = (
    Facility("F01", "阳光社区居委会", "Residents' Committee Office", "community_office", 0.5, 0.5,
             "Mo-Fr 08:30-17:30", True),
    Facility("F02", "阳光社区卫生服务中心", "Community Health Service Centre (East)", "clinic", 0.4, 2.6,
             "Mo-Su 08:00-17:00", True),
    Facility("F03", "阳光社区卫生服务站（西区）", "Community Health Station (West)", "clinic", -0.6, -2.6,
             "Mo-Sa 08:00-12:00,13:30-17:00", True),
    Facility("F04", "阳光养老驿站", "Sunshine Elderly Care Station", "elderly_care", 1.5, -0.5,
             "Mo-Su 07:30-19:30", True),
    Facility("F05", "阳光幼儿园", "Sunshine Kindergarten", "kindergarten", -1.5, 0.5,
             "Mo-Fr 07:30-17:30", True),
    Facility("F06", "社区活动中心", "Community Activity Centre", "activity_centre", 0.5, -0.5,
             "Mo-Su 09:00-21:00", True),
    Facility("F07", "社区图书室", "Community Reading Room", "library", 0.5, -0.4, "Tu-Su 09:00-18:00", True),
    Facility("F08", "健身广场", "Fitness Square", "sports", -0.5, 0.0, "Mo-Su 06:00-22:00", True),
    Facility("F09", "鲜邻生鲜超市", "FreshNeighbour Grocery", "grocery", 2.5, 1.0, "Mo-Su 07:00-22:00", True),
    Facility("F10", "便民维修点", "Repair Kiosk", "repair", 2.5, -1.0, "Mo-Su 08:00-19:00", False),
    Facility("F11", "快递驿站", "Parcel Station", "parcel", 2.5, 0.0, "Mo-Su 08:00-21:00", True),
    Facility("F12", "公共卫生间", "Public Toilet", "toilet", -2.5, 0.0, "24/7", True),
    Facility("F13", "电动汽车充电站", "EV Charging Station", "ev_charging", -1.5, 2.5, "24/7", True, 16),
    Facility("P1", "地面停车场", "Surface Car Park", "parking", 1.5, 1.5, "24/7", True, 120),
    Facility("P2", "地下车库", "Underground Garage", "parking", -0.5, 1.5, "24/7", True, 400),
    Facility("P3", "和平街路侧停车位", "Heping Street On-street Parking", "parking", -2.5, 1.5,
             "24/7", False, 60),
    Facility("W01", "1号垃圾分类驿站", "Waste Sorting Station 1", "waste_station", 1.5, -1.5,
             "Mo-Su 06:30-09:00,17:30-21:00", True),
    Facility("W02", "2号垃圾分类驿站", "Waste Sorting Station 2", "waste_station", 1.5, 0.5,
             "Mo-Su 06:30-09:00,17:30-21:00", True),
    Facility("W03", "3号垃圾分类驿站", "Waste Sorting Station 3", "waste_station", 1.5, 2.0,
             "Mo-Su 06:30-09:00,17:30-21:00", True),
    Facility("W04", "4号垃圾分类驿站", "Waste Sorting Station 4", "waste_station", -1.0, -1.5,
             "Mo-Su 06:30-09:00,17:30-21:00", True),
    Facility("W05", "5号垃圾分类驿站", "Waste Sorting Station 5", "waste_station", -1.0, 0.5,
             "Mo-Su 06:30-09:00,17:30-21:00", True),
    Facility("W06", "6号垃圾分类驿站", "Waste Sorting Station 6", "waste_station", -1.0, 2.0,
             "Mo-Su 06:30-09:00,17:30-21:00", True),
)
# fmt: on


def build_facilities(seed: int, today: date) -> DemoDataset:
    """Public facilities of the community with locations and opening hours (open)."""
    columns = [
        column("facility_id", T.STRING, C.PUBLIC, "Facility code", key=True),
        column("name_zh", T.STRING, C.PUBLIC, "Name in Chinese"),
        column("name_en", T.STRING, C.PUBLIC, "Name in English"),
        column("category", T.STRING, C.PUBLIC, "Kind of facility"),
        column("location", T.POINT, C.PUBLIC, "Entrance", unit="WGS 84"),
        column("opening_hours", T.STRING, C.PUBLIC, "Opening hours in OpenStreetMap opening_hours syntax"),
        column("wheelchair_accessible", T.BOOLEAN, C.PUBLIC, "Step-free access"),
        column("capacity", T.INTEGER, C.PUBLIC, "Parking spaces or charging points; empty otherwise"),
    ]
    records = [
        {
            "facility_id": f.id,
            "name_zh": f.name_zh,
            "name_en": f.name_en,
            "category": f.category,
            "location": {"lat": f.lat, "lon": f.lon},
            "opening_hours": f.opening_hours,
            "wheelchair_accessible": f.wheelchair_accessible,
            "capacity": f.capacity or None,
        }
        for f in FACILITIES
    ]
    return DemoDataset(
        slug="community-facilities",
        owner="committee",
        title_zh="社区公共服务设施",
        title_en="Community facilities",
        description_zh="“15分钟生活圈”内的公共服务设施：卫生、养老、教育、文体、商业、停车、充电和垃圾分类驿站。",
        description_en=(
            "Facilities of the 15-minute life circle: health, elderly care, education, culture and sport, "
            "shops, parking, EV charging and waste sorting stations."
        ),
        theme="urban-management",
        keywords=["公共服务设施", "生活圈", "养老驿站", "facilities", "life circle", "points of interest"],
        cadence="irregular",
        sharing_class="unconditional",
        licence="CC-BY-4.0",
        contact=steward_contact("committee"),
        temporal_coverage=(today - timedelta(days=365), today - timedelta(days=1)),
        spatial_coverage=COMMUNITY_AREA,
        time_column=None,
        source=synthetic_source(seed, "a typical facility mix of a Beijing residential community"),
        columns=columns,
        rows=table_from_records(columns, records),
    )


@dataclass(frozen=True, slots=True)
class _Category:
    code: str
    zh: str
    en: str
    weight: float
    peak_doy: int  # 0: no seasonality; -1: heating season only
    amplitude: float
    department: str
    median_hours: float
    summaries: tuple[str, ...]


# fmt: off
_CATEGORIES = (
    _Category("noise", "噪音扰民", "Noise", 0.18, 200, 0.75, "dept-police", 6,
              ("夜间装修噪音", "广场舞音响声音过大", "楼上住户深夜噪音", "商铺外放音乐扰民")),
    _Category("garbage", "垃圾清运", "Waste collection", 0.13, 215, 0.5, "dept-city", 20,
              ("垃圾桶满溢未及时清运", "楼道堆放杂物", "垃圾分类驿站有异味")),
    _Category("street_light", "路灯故障", "Street lights", 0.06, 195, 0.25, "dept-city", 40,
              ("路灯不亮", "路灯白天常亮", "路灯闪烁")),
    _Category("water", "供水漏水", "Water supply and leaks", 0.09, 20, 0.15, "dept-water", 18,
              ("楼道水管漏水", "停水未提前通知", "自来水水压低", "井盖冒水")),
    _Category("heating", "供暖问题", "Heating", 0.06, -1, 0.0, "dept-city", 30,
              ("暖气不热", "暖气片漏水", "室温不达标")),
    _Category("parking", "停车管理", "Parking", 0.11, 0, 0.0, "dept-transport", 30,
              ("消防通道被占用", "车辆乱停乱放", "共享单车堆积")),
    _Category("greening", "绿化养护", "Trees and green space", 0.06, 170, 0.8, "dept-city", 72,
              ("树枝遮挡窗户", "绿地杂草丛生", "树木倾斜有倒伏风险")),
    _Category("fumes", "油烟异味", "Fumes and smells", 0.06, 200, 0.3, "dept-env", 48,
              ("餐馆油烟扰民", "焚烧垃圾有烟味", "施工扬尘")),
    _Category("construction", "违法建设", "Unauthorised building works", 0.05, 110, 0.3, "dept-land", 120,
              ("楼顶私搭乱建", "占用绿地搭建棚房", "违规改动房屋结构")),
    _Category("safety", "治安隐患", "Public safety", 0.07, 200, 0.2, "dept-police", 8,
              ("楼道内可疑人员", "电动自行车楼道充电", "单元门禁损坏")),
    _Category("lift", "电梯故障", "Lifts", 0.09, 205, 0.2, "operator", 12,
              ("电梯停运", "电梯运行有异响", "电梯困人")),
)
# Relative call volume by local hour 0..23.
_HOURS = (0.2, 0.1, 0.05, 0.05, 0.05, 0.15, 0.4, 0.9, 1.4, 1.6, 1.5, 1.3,
          1.0, 1.0, 1.2, 1.2, 1.1, 1.0, 1.0, 1.2, 1.2, 1.0, 0.7, 0.4)
_NOISE_HOURS = (0.8, 0.4, 0.2, 0.1, 0.05, 0.05, 0.3, 0.6, 0.9, 1.0, 0.8, 0.6,
                0.6, 0.5, 0.5, 0.5, 0.6, 0.8, 1.2, 1.6, 2.0, 2.2, 2.0, 1.4)
# fmt: on


def _in_heating_season(day: date) -> bool:
    return day.month in (11, 12, 1, 2, 3)


def _day_weights(category: _Category, days: list[date]) -> list[float]:
    weekday = (1.15, 1.05, 1.0, 1.0, 1.0, 0.85, 0.8)
    weights: list[float] = []
    for day in days:
        if category.peak_doy == -1:
            base = (
                2.5 if (day.month == 11 and day.day >= 15) or day.month == 12 else 1.0
            ) * _in_heating_season(day)
        elif category.peak_doy == 0:
            base = 1.0
        else:
            base = seasonal(day, category.peak_doy, category.amplitude)
        weights.append(base * weekday[day.weekday()])
    return weights


def _building_pool(buildings: tuple[Building, ...], households: tuple[Household, ...]) -> list[Building]:
    """Buildings weighted by how many households live in them, as a population to draw from."""
    counts = {b.id: 0 for b in buildings}
    for h in households:
        counts[h.building_id] += 1
    return [b for b in buildings for _ in range(max(1, counts[b.id]))]


def build_hotline(
    seed: int, today: date, buildings: tuple[Building, ...], households: tuple[Household, ...]
) -> DemoDataset:
    """A year of 12345-style citizen hotline records, about 1.5 per household (conditional)."""
    rng = rng_for(seed, "hotline")
    days = [today - timedelta(days=n) for n in range(365, 0, -1)]
    total = max(1, round(1.5 * len(households)))
    day_weights = {c.code: _day_weights(c, days) for c in _CATEGORIES}
    pool = _building_pool(buildings, households)
    now = datetime.combine(today, datetime.min.time(), tzinfo=CHINA_TZ)
    drafts: list[dict[str, Any]] = []
    categories = rng.choices(_CATEGORIES, weights=[c.weight for c in _CATEGORIES], k=total)
    for cat in categories:
        day = rng.choices(days, weights=day_weights[cat.code])[0]
        hour = rng.choices(range(24), weights=_NOISE_HOURS if cat.code == "noise" else _HOURS)[0]
        received = local_datetime(day, hour, rng.randrange(60), rng.randrange(60))
        building = rng.choice(pool)
        summary = rng.choice(cat.summaries)
        # Someone trapped in a lift is an emergency: under an hour, not half a day.
        hours = (
            lognormal_hours(rng, 0.6, 0.4)
            if summary == "电梯困人"
            else lognormal_hours(rng, cat.median_hours)
        )
        age_hours = (now - received).total_seconds() / 3600
        stuck = rng.random() < 0.01  # escalated, still being worked on
        closed = hours < age_hours and not stuck
        satisfaction: int | None = None
        if closed and rng.random() < 0.8:
            slow = 1 if hours > 2 * cat.median_hours else 0
            satisfaction = max(1, rng.choices((1, 2, 3, 4, 5), weights=(4, 6, 15, 35, 40))[0] - slow)
        drafts.append(
            {
                "received_at": received,
                "category": cat.code,
                "category_zh": cat.zh,
                "summary_zh": f"{building.name_zh.removeprefix('阳光社区')}附近{summary}",
                "building_id": building.id,
                "location": {
                    "lat": round(building.lat + rng.uniform(-0.0004, 0.0004), 6),
                    "lon": round(building.lon + rng.uniform(-0.0005, 0.0005), 6),
                },
                "caller_phone": masked_phone(rng),
                "department": cat.department,
                "status": "closed" if closed else "in_progress" if age_hours > 2 else "open",
                "closed_at": received + timedelta(hours=hours) if closed else None,
                "response_hours": hours if closed else None,
                "satisfaction": satisfaction,
            }
        )
    drafts.sort(key=lambda r: r["received_at"])
    for n, record in enumerate(drafts, start=1):
        record["record_id"] = f"HL{n:06d}"
    columns = [
        column("record_id", T.STRING, C.INTERNAL, "Hotline record number", key=True),
        column("received_at", T.DATETIME, C.INTERNAL, "When the call was received"),
        column("category", T.STRING, C.PUBLIC, "Category code"),
        column("category_zh", T.STRING, C.PUBLIC, "Category in Chinese"),
        column("summary_zh", T.STRING, C.INTERNAL, "What the caller reported"),
        column("building_id", T.STRING, C.INTERNAL, "Nearest building"),
        column("location", T.POINT, C.INTERNAL, "Where the problem is", unit="WGS 84"),
        column("caller_phone", T.STRING, C.PERSONAL, "Caller's mobile number, middle digits masked"),
        column("department", T.STRING, C.INTERNAL, "Organisation the record was assigned to"),
        column("status", T.STRING, C.PUBLIC, "open, in_progress or closed"),
        column("closed_at", T.DATETIME, C.INTERNAL, "When the record was closed"),
        column("response_hours", T.DECIMAL, C.INTERNAL, "Hours from call to closure", unit="h"),
        column("satisfaction", T.INTEGER, C.INTERNAL, "Caller's rating on the return call, 1-5"),
    ]
    return DemoDataset(
        slug="hotline-12345",
        owner="bureau",
        title_zh="12345市民服务热线诉求记录",
        title_en="12345 citizen hotline records",
        description_zh=(
            "过去一年阳光社区的12345热线诉求：类别、时间、位置、承办部门、办理状态、办结时长和回访满意度。"
            "夏季噪音、垃圾和绿化诉求较多，冬季有供暖诉求。"
        ),
        description_en=(
            "A year of 12345 hotline requests from the community: category, time, place, assigned "
            "department, status, hours to closure and the caller's rating. Noise, waste and greening "
            "peak in summer; heating complaints come in winter."
        ),
        theme="urban-management",
        keywords=["12345", "接诉即办", "市民诉求", "hotline", "service requests", "complaints"],
        cadence="daily",
        sharing_class="conditional",
        sharing_conditions=(
            "向承办部门共享其承办的记录；其他部门用于统计分析时仅共享不含来电号码的字段。 / Shared with the "
            "department handling each record; other departments get the columns without the caller's "
            "phone, for analysis only."
        ),
        licence="internal",
        contact=steward_contact("bureau"),
        temporal_coverage=(days[0], days[-1]),
        spatial_coverage=COMMUNITY_AREA,
        time_column="received_at",
        source=synthetic_source(seed, "categories and seasonality modelled on Beijing 12345 annual reports"),
        columns=columns,
        rows=table_from_records(columns, drafts),
    )


def build_street_lights(seed: int, today: date, households: int) -> DemoDataset:
    """A year of street-light faults with the light's location (city management, open)."""
    rng = rng_for(seed, "street-lights")
    lights = []
    streets = (-2.5, 0.5, 2.5)  # grid steps from the centre, between the rows of buildings
    for street in range(6):  # three east-west, then three north-south streets, 15 lights each
        for k in range(15):
            along = (k - 7) / 7 * 2.5
            north, east = (streets[street], along) if street < 3 else (along, streets[street - 3])
            lights.append(
                (
                    f"L{street + 1}{k + 1:02d}",
                    round(CENTRE[0] + north * 0.0009 + rng.uniform(-0.00003, 0.00003), 6),
                    round(CENTRE[1] + east * 0.0012 + rng.uniform(-0.00003, 0.00003), 6),
                )
            )
    light_weights = [5.0 if rng.random() < 0.06 else 1.0 for _ in lights]  # a few bad fittings
    # fault type, share, median hours to repair
    kinds = (
        ("lamp_out", 0.5, 30.0),
        ("flicker", 0.2, 36.0),
        ("daytime_on", 0.12, 24.0),
        ("cable", 0.12, 90.0),
        ("pole_damage", 0.06, 120.0),
    )
    days = [today - timedelta(days=n) for n in range(365, 0, -1)]
    day_weights = [seasonal(d, 195, 0.3) for d in days]
    now = datetime.combine(today, datetime.min.time(), tzinfo=CHINA_TZ)
    drafts: list[dict[str, Any]] = []
    for _ in range(max(1, round(households / 8))):
        light_id, lat, lon = rng.choices(lights, weights=light_weights)[0]
        kind, _, median = rng.choices(kinds, weights=[w for _, w, _ in kinds])[0]
        day = rng.choices(days, weights=day_weights)[0]
        via = rng.choices(("patrol", "hotline", "sensor"), weights=(0.45, 0.3, 0.25))[0]
        hour = rng.randrange(18, 24) if via != "sensor" and rng.random() < 0.7 else rng.randrange(24)
        reported = local_datetime(day, hour, rng.randrange(60))
        hours = lognormal_hours(rng, median, 0.5)
        fixed = reported + timedelta(hours=hours) < now
        drafts.append(
            {
                "reported_at": reported,
                "light_id": light_id,
                "location": {"lat": lat, "lon": lon},
                "fault_type": kind,
                "reported_via": via,
                "status": "repaired" if fixed else "open",
                "repaired_at": reported + timedelta(hours=hours) if fixed else None,
                "repair_hours": hours if fixed else None,
            }
        )
    drafts.sort(key=lambda r: (r["reported_at"], r["light_id"]))
    for n, record in enumerate(drafts, start=1):
        record["fault_id"] = f"SL{n:05d}"
    columns = [
        column("fault_id", T.STRING, C.PUBLIC, "Fault number", key=True),
        column("reported_at", T.DATETIME, C.PUBLIC, "When the fault was reported"),
        column("light_id", T.STRING, C.PUBLIC, "Street-light number on the pole"),
        column("location", T.POINT, C.PUBLIC, "Position of the light", unit="WGS 84"),
        column("fault_type", T.STRING, C.PUBLIC, "lamp_out, flicker, daytime_on, cable or pole_damage"),
        column("reported_via", T.STRING, C.PUBLIC, "patrol, hotline or sensor"),
        column("status", T.STRING, C.PUBLIC, "open or repaired"),
        column("repaired_at", T.DATETIME, C.PUBLIC, "When the repair was finished"),
        column("repair_hours", T.DECIMAL, C.PUBLIC, "Hours from report to repair", unit="h"),
    ]
    return DemoDataset(
        slug="street-light-faults",
        owner="dept-city",
        title_zh="路灯故障及维修记录",
        title_en="Street-light faults and repairs",
        description_zh="过去一年社区道路路灯的故障报告：灯杆编号、位置、故障类型、发现渠道和修复时长。",
        description_en=(
            "A year of street-light fault reports on the community's streets: pole number, location, "
            "fault type, how it was found and hours to repair."
        ),
        theme="urban-management",
        keywords=["路灯", "市政设施", "维修", "street lights", "maintenance", "infrastructure"],
        cadence="daily",
        sharing_class="unconditional",
        licence="CC-BY-4.0",
        contact=steward_contact("dept-city"),
        temporal_coverage=(days[0], days[-1]),
        spatial_coverage=COMMUNITY_AREA,
        time_column="reported_at",
        source=synthetic_source(seed, "90 lights on six streets, more faults in the summer storm season"),
        columns=columns,
        rows=table_from_records(columns, drafts),
    )


def build_waste(
    seed: int, today: date, buildings: tuple[Building, ...], households: tuple[Household, ...]
) -> DemoDataset:
    """Daily sorted-waste weights at the six waste sorting stations, last 90 days (open)."""
    rng = rng_for(seed, "waste")
    stations = [f for f in FACILITIES if f.category == "waste_station"]
    served = {s.id: 0 for s in stations}
    for h in households:
        index = int(h.building_id[1:]) - 1
        served[stations[index % len(stations)].id] += h.size
    records: list[dict[str, Any]] = []
    for n in range(90, 0, -1):
        day = today - timedelta(days=n)
        factor = (1.1 if day.weekday() >= 5 else 1.0) * (0.8 if day.month == 10 and day.day <= 7 else 1.0)
        for s in stations:
            people = served[s.id] * factor
            accuracy = clamp(rng.gauss(0.86, 0.04), 0.6, 0.99)
            records.append(
                {
                    "collection_date": day,
                    "station_id": s.id,
                    "station_name_zh": s.name_zh,
                    "kitchen_kg": round(people * 0.17 * rng.uniform(0.85, 1.15) * seasonal(day, 220, 0.1), 1),
                    "recyclable_kg": round(people * 0.08 * rng.uniform(0.8, 1.2), 1),
                    "hazardous_kg": round(people * 0.0012 * rng.uniform(0.3, 1.7), 2),
                    "other_kg": round(people * 0.26 * rng.uniform(0.85, 1.15), 1),
                    "sorting_accuracy": round(accuracy, 3),
                }
            )
    columns = [
        column("collection_date", T.DATE, C.PUBLIC, "Day of collection", key=True),
        column(
            "station_id", T.STRING, C.PUBLIC, "Waste sorting station (see community-facilities)", key=True
        ),
        column("station_name_zh", T.STRING, C.PUBLIC, "Station name"),
        column("kitchen_kg", T.DECIMAL, C.PUBLIC, "Kitchen (food) waste collected", unit="kg"),
        column("recyclable_kg", T.DECIMAL, C.PUBLIC, "Recyclables collected", unit="kg"),
        column("hazardous_kg", T.DECIMAL, C.PUBLIC, "Hazardous waste collected", unit="kg"),
        column("other_kg", T.DECIMAL, C.PUBLIC, "Residual (other) waste collected", unit="kg"),
        column("sorting_accuracy", T.DECIMAL, C.PUBLIC, "Share of correctly sorted kitchen waste", unit="1"),
    ]
    return DemoDataset(
        slug="waste-collection",
        owner="dept-city",
        title_zh="垃圾分类驿站每日收运量",
        title_en="Daily sorted-waste collection",
        description_zh="近90天6个垃圾分类驿站每日收运的厨余垃圾、可回收物、有害垃圾和其他垃圾重量及分类准确率。",
        description_en=(
            "Weights of kitchen waste, recyclables, hazardous and residual waste collected daily at the six "
            "sorting stations over the last 90 days, with the sorting accuracy found on inspection."
        ),
        theme="environment",
        keywords=["垃圾分类", "厨余垃圾", "收运", "waste sorting", "recycling", "collection"],
        cadence="daily",
        sharing_class="unconditional",
        licence="CC-BY-4.0",
        contact=steward_contact("dept-city"),
        temporal_coverage=(today - timedelta(days=90), today - timedelta(days=1)),
        spatial_coverage=COMMUNITY_AREA,
        time_column="collection_date",
        source=synthetic_source(seed, "per-person rates after Beijing's four-way waste sorting statistics"),
        columns=columns,
        rows=table_from_records(columns, records),
    )


def build_parking(seed: int, today: date) -> DemoDataset:
    """Hourly occupancy of the three car parks over the last 30 days (transport, open)."""
    rng = rng_for(seed, "parking")
    lots = [f for f in FACILITIES if f.category == "parking"]
    records: list[dict[str, Any]] = []
    noise = {lot.id: 0.0 for lot in lots}
    for n in range(30, 0, -1):
        day = today - timedelta(days=n)
        weekend = day.weekday() >= 5
        for hour in range(24):
            for lot in lots:
                if lot.id == "P3":  # on-street: busy with visitors by day
                    base = 0.92 if 9 <= hour < 19 else 0.55
                else:  # residents: full at night, emptier on weekday working hours
                    base = (
                        0.55 if (not weekend and 9 <= hour < 17) else 0.93 if hour >= 21 or hour < 7 else 0.75
                    )
                noise[lot.id] = 0.7 * noise[lot.id] + rng.gauss(0, 0.03)
                occupied = round(clamp(base + noise[lot.id], 0.0, 1.0) * lot.capacity)
                records.append(
                    {
                        "lot_id": lot.id,
                        "observed_at": local_datetime(day, hour),
                        "lot_name_zh": lot.name_zh,
                        "capacity": lot.capacity,
                        "occupied": occupied,
                        "occupancy_rate": round(occupied / lot.capacity, 4),
                    }
                )
    columns = [
        column("lot_id", T.STRING, C.PUBLIC, "Car park (see community-facilities)", key=True),
        column("observed_at", T.DATETIME, C.PUBLIC, "Time of the count, on the hour", key=True),
        column("lot_name_zh", T.STRING, C.PUBLIC, "Car park name"),
        column("capacity", T.INTEGER, C.PUBLIC, "Spaces", unit="spaces"),
        column("occupied", T.INTEGER, C.PUBLIC, "Occupied spaces", unit="spaces"),
        column("occupancy_rate", T.DECIMAL, C.PUBLIC, "Occupied share of spaces", unit="1"),
    ]
    return DemoDataset(
        slug="parking-occupancy",
        owner="dept-transport",
        title_zh="停车场逐时占用率",
        title_en="Hourly car park occupancy",
        description_zh="近30天社区3个停车场（地面、地下、路侧）每小时的已占用车位数和占用率。",
        description_en=(
            "Occupied spaces and occupancy rate, every hour for the last 30 days, at the community's "
            "surface car park, underground garage and on-street spaces."
        ),
        theme="transport",
        keywords=["停车", "车位", "占用率", "parking", "occupancy", "car parks"],
        cadence="hourly",
        sharing_class="unconditional",
        licence="CC-BY-4.0",
        contact=steward_contact("dept-transport"),
        temporal_coverage=(today - timedelta(days=30), today - timedelta(days=1)),
        spatial_coverage=COMMUNITY_AREA,
        time_column="observed_at",
        source=synthetic_source(seed, "residential and on-street occupancy profiles"),
        columns=columns,
        rows=table_from_records(columns, records),
    )
