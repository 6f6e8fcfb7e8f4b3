"""The demonstration community (阳光社区, a fictional community in 东城区): pure, deterministic data.

Owns no tables and calls no service: ``build_community(seed)`` returns organisations, users
(all with ``DEMO_PASSWORD``), buildings, households and about a dozen datasets whose rows are
Arrow tables typed by ``zhishe.catalog.types.arrow_schema`` and whose CSV renderings go through
the platform's ordinary import path. One dataset is real public data: half-hourly electricity
demand in England and Wales in summer 2000 (Taylor 2003), see ``data/SOURCE.md``.
Metadata follows DCAT-AP 3 field names; sharing classes follow 《政务数据共享条例》.
"""

from zhishe.demo.community import DEFAULT_TODAY, DEMO_PASSWORD, build_community
from zhishe.demo.model import (
    CADENCES,
    SHARING_CLASSES,
    THEMES,
    Building,
    Community,
    DemoDataset,
    DemoUser,
    Household,
    Organisation,
)

__all__ = [
    "CADENCES",
    "DEFAULT_TODAY",
    "DEMO_PASSWORD",
    "SHARING_CLASSES",
    "THEMES",
    "Building",
    "Community",
    "DemoDataset",
    "DemoUser",
    "Household",
    "Organisation",
    "build_community",
]
