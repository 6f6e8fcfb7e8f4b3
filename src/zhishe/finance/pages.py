"""Pages of the ledger: accounts, entries, settlements and exports."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
