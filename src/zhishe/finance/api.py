"""JSON routes of the ledger under /api/v1/finance: accounts, entries, reversals, settlements and exports."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/finance", tags=["finance"])
