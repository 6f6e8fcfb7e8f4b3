"""JSON routes of group buys, membership boxes and neighbour rentals under /api/v1/services."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/services", tags=["services"])
