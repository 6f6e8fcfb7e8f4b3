"""Pages of the marketplace catalogue: discovery for residents, the provider's own profile, licences and listings, and the operator's provider list."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
