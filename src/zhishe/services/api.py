"""JSON routes of marketplace transactions under /api/v1/services: booking, the process actions, waitlists, reviews and disputes."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/services", tags=["services"])
