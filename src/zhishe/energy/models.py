"""Tables of smart energy: tariffs, forecasts, alerts, demand-response programmes and events (with
their participants and reports), and EV charging sessions with their plans."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zhishe.core.db import Base, UTCDateTime

__all__ = [
    "Alert",
    "ChargingPlan",
    "ChargingSession",
    "DemandEvent",
    "DemandProgram",
    "DemandReport",
    "EventParticipant",
    "ForecastRun",
    "Tariff",
]


class Tariff(Base):
    """A tariff in force from ``valid_from`` (local date) until ``valid_to``: periods, tiers, prices."""

    __tablename__ = "energy_tariffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: Tariffs of one family replace each other over time (residential electricity, water, gas).
    family: Mapped[str] = mapped_column(String(64), index=True)
    #: electricity | water | gas
    carrier: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: Periods, tiers and prices as ``zhishe.energy.tariff`` reads them.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ForecastRun(Base):
    """A day-ahead forecast of one series (a household, a transformer, the community)."""

    __tablename__ = "energy_forecasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("iot_sites.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64), default="power")
    made_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    model: Mapped[str] = mapped_column(String(32))
    #: times, mean, intervals, baselines, backtest and notes, as JSON.
    result: Mapped[dict[str, Any]] = mapped_column(JSON)


class Alert(Base):
    """An alert with the words saying why it fired; open → acknowledged → resolved."""

    __tablename__ = "energy_alerts"
    __table_args__ = (UniqueConstraint("site_id", "kind", "subject", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("iot_sites.id", ondelete="CASCADE"), index=True)
    datastream_id: Mapped[int | None] = mapped_column(
        ForeignKey("iot_datastreams.id", ondelete="SET NULL"), nullable=True
    )
    #: leak | abnormal | counter_reset | meter_swap | inactivity | peak
    kind: Mapped[str] = mapped_column(String(24), index=True)
    subject: Mapped[str] = mapped_column(String(100), default="")
    severity: Mapped[str] = mapped_column(String(12), default="warning")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: The reason in words: an English template (translated when shown) and its values.
    reason: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="open", index=True)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(100), default="")
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_by: Mapped[str] = mapped_column(String(100), default="")
    note: Mapped[str] = mapped_column(Text, default="")


class DemandProgram(Base):
    """A demand-response programme (OpenADR 3 ``program``)."""

    __tablename__ = "energy_dr_programs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: What a household is paid per kWh it sheds in an event (fen); none when the programme pays nothing.
    incentive_fen_per_kwh: Mapped[int | None] = mapped_column(Integer, nullable=True)


class DemandEvent(Base):
    """A demand-response event (OpenADR 3 ``event``): a window and a target reduction."""

    __tablename__ = "energy_dr_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("energy_dr_programs.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    target_kw: Mapped[float] = mapped_column(Float)
    #: high_x_of_y | forecast
    baseline: Mapped[str] = mapped_column(String(24), default="high_x_of_y")
    #: scheduled | cancelled | completed
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EventParticipant(Base):
    """A household in a demand-response event: notified, and free to opt out."""

    __tablename__ = "energy_dr_participants"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("energy_dr_events.id", ondelete="CASCADE"), primary_key=True
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("iot_sites.id", ondelete="CASCADE"), primary_key=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DemandReport(Base):
    """The delivered reduction of an event (OpenADR 3 ``report``), with the baseline method stated."""

    __tablename__ = "energy_dr_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("energy_dr_events.id", ondelete="CASCADE"), index=True)
    made_at: Mapped[datetime] = mapped_column(UTCDateTime())
    method: Mapped[str] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)


class ChargingSession(Base):
    """A car at a charging park: arrival, departure, energy wanted, the charger's maximum power and
    the resident charging, when known."""

    __tablename__ = "energy_charging_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("iot_sites.id", ondelete="CASCADE"), index=True)
    connector_id: Mapped[int] = mapped_column(Integer, default=1)
    transaction_id: Mapped[int] = mapped_column(Integer, default=0)
    arrival: Mapped[datetime] = mapped_column(UTCDateTime())
    departure: Mapped[datetime] = mapped_column(UTCDateTime())
    energy_kwh: Mapped[float] = mapped_column(Float)
    max_kw: Mapped[float] = mapped_column(Float)
    phase: Mapped[str] = mapped_column(String(8), default="")
    delivered_kwh: Mapped[float] = mapped_column(Float, default=0.0)
    #: waiting | charging | left
    state: Mapped[str] = mapped_column(String(12), default="waiting", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: The resident charging (who booked or plugged in), billed when the car leaves; none when unknown.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )


class ChargingPlan(Base):
    """A schedule of a charging park (and its battery) from ``start``, re-planned on arrivals and departures."""

    __tablename__ = "energy_charging_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("iot_sites.id", ondelete="CASCADE"), index=True)
    made_at: Mapped[datetime] = mapped_column(UTCDateTime())
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(100))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
