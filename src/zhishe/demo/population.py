"""Datasets about the buildings and the people of the community.

``buildings`` (land department, open), ``population-by-building`` (residents' committee,
aggregates), ``household-register`` (police, personal data) and ``elderly-residents``
(committee, not shared).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from zhishe.catalog.types import Classification as C
from zhishe.catalog.types import ColumnType as T
from zhishe.demo._util import COMMUNITY_AREA, column, rng_for, synthetic_source, table_from_records
from zhishe.demo.model import Building, DemoDataset, Household
from zhishe.demo.names import masked_phone, person_name
from zhishe.demo.people import steward_contact

__all__ = ["build_buildings_dataset", "build_elderly", "build_household_register", "build_population"]


def build_buildings_dataset(seed: int, today: date, buildings: tuple[Building, ...]) -> DemoDataset:
    """The building register of the community (land department, open)."""
    columns = [
        column("building_id", T.STRING, C.PUBLIC, "Building code", key=True),
        column("name_zh", T.STRING, C.PUBLIC, "Name in Chinese"),
        column("name_en", T.STRING, C.PUBLIC, "Name in English"),
        column("location", T.POINT, C.PUBLIC, "Centre of the footprint", unit="WGS 84"),
        column("floors", T.INTEGER, C.PUBLIC, "Storeys above ground", unit="floors"),
        column("units", T.INTEGER, C.PUBLIC, "Stairwells (单元)", unit="stairwells"),
        column("flats", T.INTEGER, C.PUBLIC, "Dwellings in the building", unit="flats"),
        column("year_built", T.INTEGER, C.PUBLIC, "Year of completion", unit="year"),
        column("structure", T.STRING, C.PUBLIC, "brick-concrete or reinforced-concrete"),
    ]
    records = [
        {
            "building_id": b.id,
            "name_zh": b.name_zh,
            "name_en": b.name_en,
            "location": {"lat": b.lat, "lon": b.lon},
            "floors": b.floors,
            "units": b.units,
            "flats": b.capacity,
            "year_built": b.year_built,
            "structure": "brick-concrete" if b.floors <= 6 else "reinforced-concrete",
        }
        for b in buildings
    ]
    return DemoDataset(
        slug="buildings",
        owner="dept-land",
        title_zh="阳光社区建筑物登记",
        title_en="Buildings of Sunshine Community",
        description_zh="社区内每栋住宅楼的编号、名称、位置、层数、单元数、户数和建成年份。",
        description_en=(
            "Every residential building: code, name, location, storeys, stairwells, flats and year built."
        ),
        theme="urban-management",
        keywords=["建筑物", "房屋", "不动产", "buildings", "housing", "land"],
        cadence="annual",
        sharing_class="unconditional",
        licence="CC-BY-4.0",
        contact=steward_contact("dept-land"),
        temporal_coverage=(date(min(b.year_built for b in buildings), 1, 1), today - timedelta(days=1)),
        spatial_coverage=COMMUNITY_AREA,
        time_column=None,
        source=synthetic_source(seed, "modelled on a mixed 1980s-2010s inner-city estate"),
        columns=columns,
        rows=table_from_records(columns, records),
    )


def build_population(
    seed: int, today: date, buildings: tuple[Building, ...], households: tuple[Household, ...]
) -> DemoDataset:
    """Residents by building and age band, counted from the household register (open)."""
    columns = [
        column("building_id", T.STRING, C.PUBLIC, "Building code", key=True),
        column("building_name_zh", T.STRING, C.PUBLIC, "Building name"),
        column("households", T.INTEGER, C.PUBLIC, "Registered households", unit="households"),
        column("residents", T.INTEGER, C.PUBLIC, "Registered residents", unit="persons"),
        column("residents_0_14", T.INTEGER, C.PUBLIC, "Residents aged 0-14", unit="persons"),
        column("residents_15_59", T.INTEGER, C.PUBLIC, "Residents aged 15-59", unit="persons"),
        column("residents_60_plus", T.INTEGER, C.PUBLIC, "Residents aged 60 or over", unit="persons"),
        column(
            "elderly_living_alone", T.INTEGER, C.PUBLIC, "One-person households aged 60+", unit="households"
        ),
    ]
    records: list[dict[str, Any]] = []
    for b in buildings:
        mine = [h for h in households if h.building_id == b.id]
        young = sum(h.children_0_14 for h in mine)
        old = sum(len(h.elderly_birth_years) for h in mine)
        total = sum(h.size for h in mine)
        records.append(
            {
                "building_id": b.id,
                "building_name_zh": b.name_zh,
                "households": len(mine),
                "residents": total,
                "residents_0_14": young,
                "residents_15_59": total - young - old,
                "residents_60_plus": old,
                "elderly_living_alone": sum(h.elderly_living_alone for h in mine),
            }
        )
    as_of = today - timedelta(days=1)
    return DemoDataset(
        slug="population-by-building",
        owner="committee",
        title_zh="分楼栋人口统计",
        title_en="Population by building",
        description_zh=f"截至{as_of.isoformat()}按楼栋统计的户数、常住人口及年龄结构（0–14岁、15–59岁、60岁及以上）。",
        description_en=f"Households, residents and age structure (0-14, 15-59, 60+) per building on {as_of}.",
        theme="population",
        keywords=["人口", "老龄化", "楼栋", "population", "ageing", "buildings"],
        cadence="monthly",
        sharing_class="unconditional",
        licence="CC-BY-4.0",
        contact=steward_contact("committee"),
        temporal_coverage=(as_of, as_of),
        spatial_coverage=COMMUNITY_AREA,
        time_column=None,
        source=synthetic_source(seed, "aggregated from the synthetic household register"),
        columns=columns,
        rows=table_from_records(columns, records),
    )


def build_household_register(seed: int, today: date, households: tuple[Household, ...]) -> DemoDataset:
    """The household register with heads' names, birth years and phones (police, conditional)."""
    columns = [
        column("household_id", T.STRING, C.INTERNAL, "Household number", key=True),
        column("building_id", T.STRING, C.INTERNAL, "Building code"),
        column("unit", T.INTEGER, C.INTERNAL, "Stairwell (单元)"),
        column("floor", T.INTEGER, C.INTERNAL, "Floor"),
        column("room", T.STRING, C.PERSONAL, "Flat inside the building: unit-floor and door"),
        column("household_size", T.INTEGER, C.INTERNAL, "Members of the household", unit="persons"),
        column("head_name", T.STRING, C.PERSONAL, "Name of the head of household"),
        column("head_gender", T.STRING, C.PERSONAL, "Gender of the head: M or F"),
        column("head_birth_year", T.INTEGER, C.PERSONAL, "Birth year of the head", unit="year"),
        column("head_phone", T.STRING, C.PERSONAL, "Mobile number of the head, middle digits masked"),
        column("has_elderly", T.BOOLEAN, C.PERSONAL, "A member is aged 60 or over"),
        column("registered_on", T.DATE, C.INTERNAL, "Date of residence registration"),
        column("receives_subsidy", T.BOOLEAN, C.SENSITIVE, "Receives the minimum living allowance (低保)"),
    ]
    records = [
        {
            "household_id": h.id,
            "building_id": h.building_id,
            "unit": h.unit,
            "floor": h.floor,
            "room": h.room,
            "household_size": h.size,
            "head_name": h.head_name,
            "head_gender": h.head_gender,
            "head_birth_year": h.head_birth_year,
            "head_phone": h.phone_masked,
            "has_elderly": h.is_elderly,
            "registered_on": h.registered_on,
            "receives_subsidy": h.receives_subsidy,
        }
        for h in households
    ]
    return DemoDataset(
        slug="household-register",
        owner="dept-police",
        title_zh="社区居住登记户册",
        title_en="Household register",
        description_zh="每户的门牌、人口数、户主姓名、性别、出生年份、联系电话（已脱敏）、是否有老年人及低保情况。",
        description_en=(
            "Each household's flat, size, head's name, gender, birth year and masked phone, whether a "
            "member is 60 or over, and minimum-living-allowance status."
        ),
        theme="population",
        keywords=["户籍", "居住登记", "户主", "household register", "residents", "registration"],
        cadence="daily",
        sharing_class="conditional",
        sharing_conditions=(
            "仅向承担社区治理、养老服务或应急职责的部门共享，限定用途、字段和期限，不得向第三方提供。 / "
            "Shared only with departments responsible for community governance, elderly care or emergencies, "
            "scoped by purpose, columns and expiry; never passed on to third parties."
        ),
        licence="internal",
        contact=steward_contact("dept-police"),
        temporal_coverage=(min(h.registered_on for h in households), today - timedelta(days=1)),
        spatial_coverage=COMMUNITY_AREA,
        time_column=None,
        source=synthetic_source(seed, "names drawn from common surnames and given names by generation"),
        columns=columns,
        rows=table_from_records(columns, records),
    )


# (condition, prevalence among people aged 60-79; higher from 80)
_CONDITIONS = (
    ("高血压", 0.52),
    ("糖尿病", 0.2),
    ("冠心病", 0.13),
    ("骨关节病", 0.18),
    ("慢阻肺", 0.07),
    ("脑卒中后遗症", 0.05),
    ("阿尔茨海默病", 0.04),
)


def build_elderly(seed: int, today: date, households: tuple[Household, ...]) -> DemoDataset:
    """Every resident aged 60+, with health and mobility for the care programme (not shared)."""
    rng = rng_for(seed, "elderly")
    columns = [
        column("resident_id", T.STRING, C.INTERNAL, "Resident number: household number and member", key=True),
        column("household_id", T.STRING, C.INTERNAL, "Household number"),
        column("building_id", T.STRING, C.INTERNAL, "Building code"),
        column("room", T.STRING, C.PERSONAL, "Flat inside the building"),
        column("name", T.STRING, C.PERSONAL, "Full name"),
        column("gender", T.STRING, C.PERSONAL, "M or F"),
        column("birth_year", T.INTEGER, C.PERSONAL, "Birth year", unit="year"),
        column("lives_alone", T.BOOLEAN, C.SENSITIVE, "Lives alone (独居)"),
        column(
            "chronic_conditions", T.STRING, C.SENSITIVE, "Known chronic conditions, ';'-separated; 无 if none"
        ),
        column("mobility", T.STRING, C.SENSITIVE, "Self-care ability: 自理 / 半失能 / 失能"),
        column("has_care_button", T.BOOLEAN, C.INTERNAL, "An emergency call button is installed"),
        column("emergency_contact_phone", T.STRING, C.PERSONAL, "Emergency contact, masked mobile number"),
    ]
    records: list[dict[str, Any]] = []
    for h in households:
        for k, birth_year in enumerate(h.elderly_birth_years):
            is_head = k == 0 and h.head_birth_year == birth_year
            gender: Literal["M", "F"] = h.head_gender
            if not is_head and rng.random() < 0.85:
                gender = "F" if h.head_gender == "M" else "M"
            age = today.year - birth_year
            conditions = [c for c, p in _CONDITIONS if rng.random() < p * (1.4 if age >= 80 else 1.0)]
            dependent = 0.02 + max(0, age - 70) * 0.012
            roll = rng.random()
            mobility = "失能" if roll < dependent else "半失能" if roll < 3 * dependent + 0.05 else "自理"
            needs_button = h.elderly_living_alone or mobility != "自理"
            records.append(
                {
                    "resident_id": f"{h.id}-{k + 1}",
                    "household_id": h.id,
                    "building_id": h.building_id,
                    "room": h.room,
                    "name": h.head_name if is_head else person_name(rng, birth_year, gender),
                    "gender": gender,
                    "birth_year": birth_year,
                    "lives_alone": h.elderly_living_alone,
                    "chronic_conditions": ";".join(conditions) or "无",
                    "mobility": mobility,
                    "has_care_button": needs_button or rng.random() < 0.15,
                    "emergency_contact_phone": masked_phone(rng),
                }
            )
    return DemoDataset(
        slug="elderly-residents",
        owner="committee",
        title_zh="老年人服务对象名册",
        title_en="Elderly residents register",
        description_zh="社区60岁及以上居民名册，含独居、慢性病、自理能力和紧急联系人，用于居家养老服务和应急探视。",
        description_en=(
            "Residents aged 60 or over, with living alone, chronic conditions, self-care ability and an "
            "emergency contact, kept for home elderly care and welfare checks."
        ),
        theme="health",
        keywords=["老年人", "居家养老", "独居老人", "elderly", "elderly care", "welfare check"],
        cadence="monthly",
        sharing_class="not_shared",
        legal_basis=(
            "《中华人民共和国个人信息保护法》第二十八条、第二十九条：健康状况和行动能力属于敏感个人信息，"
            "仅为向本人提供养老服务所必需，未经本人单独同意不得向其他机构提供。 / Personal Information "
            "Protection Law of the PRC, Articles 28-29: health and mobility are sensitive personal "
            "information, processed only as needed to provide care to the person, and not provided to "
            "other bodies without the person's separate consent."
        ),
        licence="internal",
        contact=steward_contact("committee"),
        temporal_coverage=(today - timedelta(days=30), today - timedelta(days=1)),
        spatial_coverage=COMMUNITY_AREA,
        time_column=None,
        source=synthetic_source(seed, "chronic-condition rates loosely follow Chinese surveys of people 60+"),
        columns=columns,
        rows=table_from_records(columns, records),
    )
