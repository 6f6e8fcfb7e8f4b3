"""Tables of IoT: sites, who lives at them, devices (SensorThings Things), sensors, observed
properties, datastreams, the recent readings, the latest value per datastream, and rollups.

Full reading history is not here: it lives in a Delta table of the lake (``zhishe.iot.history``).
``iot_readings`` is the durable landing table: a reading is acknowledged once its row is committed,
and its primary key (datastream, time) makes duplicates idempotent. Rows are copied to the lake by
the flush job and pruned after ``iot_hot_days``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from zhishe.core.db import Base, UTCDateTime

__all__ = [
    "CounterEvent",
    "Datastream",
    "Device",
    "Flush",
    "Latest",
    "ObservedProperty",
    "Reading",
    "Rollup",
    "Sensor",
    "Site",
    "SiteMember",
]


class Site(Base):
    """A household, a building, or a community asset (transformer, charging park, battery, PV)."""

    __tablename__ = "iot_sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(24), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: The organisation that runs the site (the operator for community assets and households).
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    #: The building or unit of the address list where the site is, if any.
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), nullable=True, index=True)
    #: The site that feeds this one (a household's transformer), if any.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("iot_sites.id"), nullable=True, index=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Kind-specific settings: a transformer's limit in kW and phases, a battery's capacity, …
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Whether the household let the operator see its own (not aggregated) data.
    detail_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Whether a resident of the household is enrolled, with consent, in the inactivity watch.
    care_enrolled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SiteMember(Base):
    """A resident of a household site: they see that site's devices and data."""

    __tablename__ = "iot_site_members"

    site_id: Mapped[int] = mapped_column(ForeignKey("iot_sites.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Sensor(Base):
    """A kind of instrument (SensorThings Sensor): a meter model, a motion detector."""

    __tablename__ = "iot_sensors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    encoding_type: Mapped[str] = mapped_column(String(100), default="text/html")
    meta: Mapped[str] = mapped_column(Text, default="")


class ObservedProperty(Base):
    """What is observed (SensorThings ObservedProperty): active power, energy, temperature, motion."""

    __tablename__ = "iot_observed_properties"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    definition: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")


class Device(Base):
    """A device at a site (SensorThings Thing), with its own rotatable credential."""

    __tablename__ = "iot_devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("iot_sites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: SHA-256 of the device token; the token itself is shown once.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    token_rotated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Datastream(Base):
    """One series of a device (SensorThings Datastream): a unit, an observed property and a kind."""

    __tablename__ = "iot_datastreams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("iot_devices.id", ondelete="CASCADE"), index=True)
    sensor_id: Mapped[int] = mapped_column(ForeignKey("iot_sensors.id"))
    observed_property_id: Mapped[int] = mapped_column(ForeignKey("iot_observed_properties.id"))
    #: The key a device uses in its telemetry payload (``{"values": {"<key>": …}}``).
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: instantaneous | cumulative | event
    kind: Mapped[str] = mapped_column(String(16))
    unit_name: Mapped[str] = mapped_column(String(64), default="")
    unit_symbol: Mapped[str] = mapped_column(String(32), default="")
    unit_definition: Mapped[str] = mapped_column(String(300), default="")
    observation_type: Mapped[str] = mapped_column(String(200))
    #: L1, L2, L3 or empty when not known.
    phase: Mapped[str] = mapped_column(String(4), default="")
    #: Where the device is inside the site (kitchen, front door), for readable alerts.
    room: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("uq_iot_datastreams_device_key", "device_id", "key", unique=True),)


class Reading(Base):
    """A recent reading: the durable landing row, copied to the lake history by the flush job.

    ``id`` is the SensorThings Observation id; (datastream, time) is unique, which makes repeats
    idempotent.
    """

    __tablename__ = "iot_readings"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    datastream_id: Mapped[int] = mapped_column(ForeignKey("iot_datastreams.id", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: 0 until the flush job has copied the row to the lake, then the flush batch number.
    flushed: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        Index("uq_iot_readings_datastream_time", "datastream_id", "time", unique=True),
        Index("ix_iot_readings_flushed", "flushed", "received_at"),
    )


class Latest(Base):
    """The hot table: the latest reading of each datastream."""

    __tablename__ = "iot_latest"

    datastream_id: Mapped[int] = mapped_column(
        ForeignKey("iot_datastreams.id", ondelete="CASCADE"), primary_key=True
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    value: Mapped[float] = mapped_column(Float)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Rollup(Base):
    """Aggregates of one datastream over one 15-minute, hourly or daily bucket (local time)."""

    __tablename__ = "iot_rollups"

    datastream_id: Mapped[int] = mapped_column(
        ForeignKey("iot_datastreams.id", ondelete="CASCADE"), primary_key=True
    )
    #: 15min | 1h | 1d
    interval: Mapped[str] = mapped_column(String(8), primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)
    minimum: Mapped[float] = mapped_column(Float)
    maximum: Mapped[float] = mapped_column(Float)
    last: Mapped[float] = mapped_column(Float)
    last_time: Mapped[datetime] = mapped_column(UTCDateTime())
    #: For cumulative counters: the consumption in the bucket (never negative); else null.
    delta: Mapped[float | None] = mapped_column(Float, nullable=True)


class Flush(Base):
    """One copy of new readings to the lake: claimed, written (with its number in the commit), done."""

    __tablename__ = "iot_flushes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)


class CounterEvent(Base):
    """A correction made to a counter's consumption: a reset, a meter swap, a jump or a conflict.

    Recorded once (and audited) when the rollups first meet it; the consumption already excludes it.
    """

    __tablename__ = "iot_counter_events"
    __table_args__ = (Index("uq_iot_counter_events", "datastream_id", "time", "kind", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    datastream_id: Mapped[int] = mapped_column(
        ForeignKey("iot_datastreams.id", ondelete="CASCADE"), index=True
    )
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(16))
    before: Mapped[float] = mapped_column(Float)
    after: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
