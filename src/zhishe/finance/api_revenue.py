"""JSON routes of the other revenue streams and the profit model under /api/v1/finance."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/finance", tags=["finance"])
