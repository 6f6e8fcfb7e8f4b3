"""The JSON shapes of the IoT API (the SensorThings shapes are built in ``sensorthings.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ConsentUpdate",
    "DatastreamCreate",
    "DatastreamRead",
    "DeviceCreate",
    "DeviceCreated",
    "DeviceRead",
    "MemberCreate",
    "SeriesPoint",
    "SeriesRead",
    "SiteCreate",
    "SitePage",
    "SiteRead",
]


class SiteCreate(BaseModel):
    """A new site."""

    code: str = Field(min_length=1, max_length=64)
    kind: str = Field(description="household, building, transformer, charging_park, battery, pv or asset")
    name: str = Field(min_length=1, max_length=200)
    org_id: int | None = Field(None, ge=1, le=2**62, description="The running organisation; default yours.")
    area_id: int | None = Field(None, ge=1, le=2**62)
    parent_id: int | None = Field(None, ge=1, le=2**62, description="The site that feeds this one.")
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    properties: dict[str, Any] = Field(default_factory=dict)


class SiteRead(BaseModel):
    """A site."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    kind: str
    name: str
    org_id: int
    area_id: int | None
    parent_id: int | None
    lat: float | None
    lon: float | None
    properties: dict[str, Any]
    detail_consent: bool
    care_enrolled: bool
    created_at: datetime


class SitePage(BaseModel):
    """A page of sites."""

    items: list[SiteRead]
    next: str | None


class MemberCreate(BaseModel):
    """A resident to add to a household."""

    user_id: int = Field(ge=1, le=2**62)


class ConsentUpdate(BaseModel):
    """A household's consents; leave a field out to keep it."""

    detail: bool | None = Field(None, description="Let the operator see this household's own data.")
    care: bool | None = Field(None, description="Enrol in the inactivity watch (elderly care).")


class DeviceCreate(BaseModel):
    """A device to provision at a site."""

    site_id: int = Field(ge=1, le=2**62)
    code: str = Field(min_length=1, max_length=64)
    kind: str
    name: str = Field("", max_length=200)
    room: str = Field("", max_length=64)
    phase: str = Field("", max_length=4)


class DatastreamRead(BaseModel):
    """A datastream of a device."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    name: str
    kind: str
    unit_name: str
    unit_symbol: str
    unit_definition: str
    phase: str
    room: str


class DatastreamCreate(BaseModel):
    """A datastream to add to a device."""

    key: str = Field(min_length=1, max_length=64)
    name: str = Field("", max_length=200)
    kind: str
    observed_property: str = Field(min_length=1, max_length=200)
    unit_name: str = Field("", max_length=64)
    unit_symbol: str = Field("", max_length=32)
    unit_definition: str = Field("", max_length=300)
    room: str = Field("", max_length=64)
    phase: str = Field("", max_length=4)


class DeviceRead(BaseModel):
    """A device, without its token."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    site_id: int
    kind: str
    name: str
    token_prefix: str
    token_rotated_at: datetime
    active: bool
    datastreams: list[DatastreamRead] = Field(default_factory=list)


class DeviceCreated(DeviceRead):
    """A device just provisioned or rotated: the token is shown this once."""

    token: str


class SeriesPoint(BaseModel):
    """One point of a chart series."""

    time: datetime
    value: float | None
    count: int


class SeriesRead(BaseModel):
    """A datastream's values between two times, raw or aggregated per interval."""

    datastream: int
    unit: str
    interval: str
    agg: str
    points: list[SeriesPoint]
