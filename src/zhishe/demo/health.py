"""The clinic visit summary: daily visits by clinic and syndrome group, for syndromic surveillance."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from zhishe.catalog.types import Classification as C
from zhishe.catalog.types import ColumnType as T
from zhishe.demo._util import (
    COMMUNITY_AREA,
    column,
    poisson,
    rng_for,
    seasonal,
    synthetic_source,
    table_from_records,
)
from zhishe.demo.model import DemoDataset, Household
from zhishe.demo.people import steward_contact

__all__ = ["GASTRO_CLUSTER", "SYNDROMES", "build_clinic_visits"]

#: Syndrome groups: code, Chinese name, daily visits per 1,000 residents, seasonal peak (day of
#: year), seasonal amplitude, share of patients aged 65+.
SYNDROMES: tuple[tuple[str, str, float, int, float, float], ...] = (
    ("ili", "流感样病例", 0.6, 20, 0.8, 0.15),
    ("respiratory", "呼吸道症状", 1.4, 10, 0.45, 0.35),
    ("gastro", "胃肠道症状", 0.7, 215, 0.5, 0.2),
    ("rash", "发热伴出疹", 0.12, 130, 0.6, 0.05),
)
#: The outbreak hidden in the data: clinic, first day counted back from today, extra visits per day.
GASTRO_CLUSTER = ("clinic-east", 80, (3, 6, 9, 7, 4, 2))

# clinic code, share of the community's patients, open on Sundays
_CLINICS = (("clinic-east", 0.68, True), ("clinic-west", 0.32, False))
_WEEKDAY = (1.2, 1.05, 1.0, 1.0, 1.0, 0.75, 0.6)


def build_clinic_visits(seed: int, today: date, households: tuple[Household, ...]) -> DemoDataset:
    """A year of daily visit counts by clinic and syndrome group (east clinic, conditional)."""
    rng = rng_for(seed, "clinic-visits")
    per_thousand = sum(h.size for h in households) / 1000
    cluster_clinic, cluster_back, cluster_extra = GASTRO_CLUSTER
    cluster_start = today - timedelta(days=cluster_back)
    records: list[dict[str, Any]] = []
    for n in range(365, 0, -1):
        day = today - timedelta(days=n)
        for clinic, share, sundays in _CLINICS:
            if day.weekday() == 6 and not sundays:
                continue
            for code, name_zh, rate, peak, amplitude, old_share in SYNDROMES:
                mean = rate * per_thousand * share * seasonal(day, peak, amplitude) * _WEEKDAY[day.weekday()]
                visits = poisson(rng, mean)
                offset = (day - cluster_start).days
                if code == "gastro" and clinic == cluster_clinic and 0 <= offset < len(cluster_extra):
                    visits += cluster_extra[offset]
                records.append(
                    {
                        "visit_date": day,
                        "clinic_code": clinic,
                        "syndrome_group": code,
                        "syndrome_zh": name_zh,
                        "visits": visits,
                        "visits_65_plus": sum(rng.random() < old_share for _ in range(visits)),
                    }
                )
    columns = [
        column("visit_date", T.DATE, C.INTERNAL, "Day of the visits", key=True),
        column("clinic_code", T.STRING, C.INTERNAL, "Clinic organisation code", key=True),
        column("syndrome_group", T.STRING, C.INTERNAL, "ili, respiratory, gastro or rash", key=True),
        column("syndrome_zh", T.STRING, C.INTERNAL, "Syndrome group in Chinese"),
        column("visits", T.INTEGER, C.SENSITIVE, "Visits with this syndrome", unit="visits"),
        column("visits_65_plus", T.INTEGER, C.SENSITIVE, "Of which patients aged 65 or over", unit="visits"),
    ]
    return DemoDataset(
        slug="clinic-visits-daily",
        owner="clinic-east",
        title_zh="社区卫生机构症状监测日报",
        title_en="Daily clinic visits by syndrome group",
        description_zh=(
            "近一年两家社区卫生机构每日按症候群（流感样病例、呼吸道、胃肠道、发热伴出疹）统计的就诊人次，"
            "西区服务站周日休息。用于症状监测预警。"
        ),
        description_en=(
            "Daily visits over the last year at the two community clinics by syndrome group (influenza-like "
            "illness, respiratory, gastrointestinal, fever with rash); the west station closes on Sundays. "
            "For syndromic surveillance."
        ),
        theme="health",
        keywords=["症状监测", "流感样病例", "就诊人次", "syndromic surveillance", "ILI", "clinic visits"],
        cadence="daily",
        sharing_class="conditional",
        sharing_conditions=(
            "仅向卫生健康、疾病预防控制部门和数据管理局共享，用于症状监测和应急处置；"
            "对外仅发布经隐私保护处理的汇总。 / "
            "Shared only with health and disease-control authorities and the data bureau, for surveillance "
            "and emergency response; only privacy-protected aggregates are published."
        ),
        licence="internal",
        contact=steward_contact("clinic-east"),
        temporal_coverage=(today - timedelta(days=365), today - timedelta(days=1)),
        spatial_coverage=COMMUNITY_AREA,
        time_column="visit_date",
        source=synthetic_source(
            seed, "Poisson counts with winter respiratory and summer gastrointestinal peaks"
        ),
        columns=columns,
        rows=table_from_records(columns, records),
    )
