"""Pages of residents' money: the wallet, vouchers and the gateway checkout."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
