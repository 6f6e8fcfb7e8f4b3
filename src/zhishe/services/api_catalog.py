"""JSON routes of the marketplace catalogue under /api/v1/services: categories, providers, licences, listings, slots, stock and search."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/services", tags=["services"])
