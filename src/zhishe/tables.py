"""Imports every domain's tables, so that ``Base.metadata`` knows them all (Alembic, tests)."""

from zhishe.catalog import models as catalog_models
from zhishe.core.accounts import models as accounts_models
from zhishe.core.audit import models as audit_models
from zhishe.core.db import Base

__all__ = ["Base", "accounts_models", "audit_models", "catalog_models"]
