"""Pages of marketplace transactions: booking, paying, my orders, the provider's orders, reviews and disputes."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
