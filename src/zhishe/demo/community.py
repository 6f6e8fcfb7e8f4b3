"""Build the whole demonstration community from one seed.

``build_community(seed)`` is pure and deterministic: no database, no network, no clock. The same
seed and ``today`` give byte-identical CSV for every dataset; each dataset draws from its own
seeded stream, so changing one builder leaves the others as they were.
"""

from __future__ import annotations

from datetime import date

from zhishe.demo.city import build_facilities, build_hotline, build_parking, build_street_lights, build_waste
from zhishe.demo.environment import build_air_quality, build_energy, build_water
from zhishe.demo.health import build_clinic_visits
from zhishe.demo.model import Community
from zhishe.demo.people import (
    DEMO_PASSWORD,
    build_buildings,
    build_households,
    build_organisations,
    build_users,
    resident_surnames,
)
from zhishe.demo.population import (
    build_buildings_dataset,
    build_elderly,
    build_household_register,
    build_population,
)
from zhishe.demo.taylor import build_taylor

__all__ = ["DEFAULT_TODAY", "DEMO_PASSWORD", "build_community"]

#: The demo's "now": relative windows (the past year, the last 60 days...) end the day before.
DEFAULT_TODAY = date(2026, 11, 1)


def build_community(seed: int = 2026, *, households: int = 2000, today: date = DEFAULT_TODAY) -> Community:
    """The demo world: organisations, users, buildings, ``households`` households and their datasets."""
    buildings = build_buildings(seed, households)
    homes, resident_ids = build_households(seed, buildings, households, today, resident_surnames(households))
    datasets = (
        build_buildings_dataset(seed, today, buildings),
        build_population(seed, today, buildings, homes),
        build_household_register(seed, today, homes),
        build_elderly(seed, today, homes),
        build_hotline(seed, today, buildings, homes),
        build_street_lights(seed, today, households),
        build_waste(seed, today, buildings, homes),
        build_parking(seed, today),
        build_facilities(seed, today),
        build_air_quality(seed, today),
        build_energy(seed, today, buildings, homes),
        build_water(seed, today, buildings, homes),
        build_clinic_visits(seed, today, homes),
        build_taylor(),
    )
    return Community(
        seed=seed,
        today=today,
        name_zh="阳光社区",
        name_en="Sunshine Community",
        district_zh="东城区",
        district_en="Dongcheng District",
        organisations=build_organisations(),
        users=build_users(seed, homes, resident_ids),
        buildings=buildings,
        households=homes,
        datasets=datasets,
    )
