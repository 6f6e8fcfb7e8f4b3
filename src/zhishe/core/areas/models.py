"""The area tree: each area has a code, a level and a parent one level up."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from zhishe.core.db import Base

__all__ = ["LEVELS", "Area"]

#: Levels from the widest to the narrowest. A child is always at a narrower level than its parent.
LEVELS = ("district", "subdistrict", "community", "building", "unit")


class Area(Base):
    """One area of the community's address list."""

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), nullable=True, index=True)
    level: Mapped[str] = mapped_column(String(16), index=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)

    def name(self, language: str) -> str:
        """The name in ``language``, falling back to Chinese."""
        return (self.name_en if language == "en" else self.name_zh) or self.name_zh
