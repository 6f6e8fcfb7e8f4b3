"""Imports every domain's tables, so that ``Base.metadata`` knows them all (Alembic, tests)."""

from zhishe.catalog import models as catalog_models
from zhishe.core.accounts import models as accounts_models
from zhishe.core.areas import models as areas_models
from zhishe.core.audit import models as audit_models
from zhishe.core.db import Base
from zhishe.core.notifications import models as notifications_models
from zhishe.energy import models as energy_models
from zhishe.exchange import models as exchange_models
from zhishe.finance import models as finance_models
from zhishe.iot import models as iot_models
from zhishe.opendata import models as opendata_models
from zhishe.participation import models as participation_models
from zhishe.services import models as services_models

__all__ = [
    "Base",
    "accounts_models",
    "areas_models",
    "audit_models",
    "catalog_models",
    "energy_models",
    "exchange_models",
    "finance_models",
    "iot_models",
    "notifications_models",
    "opendata_models",
    "participation_models",
    "services_models",
]
