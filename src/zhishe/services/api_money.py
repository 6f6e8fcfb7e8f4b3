"""JSON routes of residents' money under /api/v1/services: wallet, vouchers, payments and the gateway callback."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/services", tags=["services"])
