"""The kinds of site, device and datastream the platform knows, and the datastreams each device
kind gets when it is provisioned.

Units follow UCUM symbols with QUDT definitions, as SensorThings' ``unitOfMeasurement`` asks
(name, symbol, definition). Datastream kinds:

- ``instantaneous``: a level at a moment (power, temperature, flow rate);
- ``cumulative``: a counter that only rises (kWh, m³) but may reset or be swapped, like Home
  Assistant's ``total_increasing``; consumption is the difference between readings;
- ``event``: something happened (motion, a door, a button): the value is 1 (or 0 when it ends).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DATASTREAM_KINDS",
    "DEVICE_KINDS",
    "OBSERVATION_TYPES",
    "SITE_KINDS",
    "StreamSpec",
    "streams_of",
]

SITE_KINDS = ("household", "building", "transformer", "charging_park", "battery", "pv", "asset")
DATASTREAM_KINDS = ("instantaneous", "cumulative", "event")

_OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
OBSERVATION_TYPES = {
    "instantaneous": _OM + "OM_Measurement",
    "cumulative": _OM + "OM_Measurement",
    "event": _OM + "OM_TruthObservation",
}
_QUDT = "http://qudt.org/vocab/unit/"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A datastream a device kind has: its payload key, property, kind and unit."""

    key: str
    name: str
    observed_property: str
    definition: str
    kind: str
    unit_name: str
    unit_symbol: str
    unit_definition: str


def _s(key: str, name: str, prop: str, kind: str, unit: tuple[str, str, str]) -> StreamSpec:
    return StreamSpec(
        key=key,
        name=name,
        observed_property=prop,
        definition=f"https://zhishe.example/def/property/{prop.lower().replace(' ', '-')}",
        kind=kind,
        unit_name=unit[0],
        unit_symbol=unit[1],
        unit_definition=_QUDT + unit[2] if unit[2] else "",
    )


_KWH = ("kilowatt hour", "kW.h", "KiloW-HR")
_KW = ("kilowatt", "kW", "KiloW")
_M3 = ("cubic metre", "m3", "M3")
_LPM = ("litre per minute", "L/min", "L-PER-MIN")
_C = ("degree Celsius", "Cel", "DEG_C")
_PCT = ("percent", "%", "PERCENT")
_UGM3 = ("microgram per cubic metre", "ug/m3", "MicroGM-PER-M3")
_EVENT = ("event", "1", "")

#: Device kind → the datastreams it is provisioned with.
DEVICE_KINDS: dict[str, tuple[StreamSpec, ...]] = {
    "electricity_meter": (
        _s("energy", "Electricity energy", "Electric energy", "cumulative", _KWH),
        _s("power", "Electric power", "Electric power", "instantaneous", _KW),
    ),
    "water_meter": (
        _s("volume", "Water volume", "Water volume", "cumulative", _M3),
        _s("flow", "Water flow", "Water flow", "instantaneous", _LPM),
    ),
    "gas_meter": (_s("volume", "Gas volume", "Gas volume", "cumulative", _M3),),
    "env_sensor": (
        _s("temperature", "Temperature", "Air temperature", "instantaneous", _C),
        _s("humidity", "Humidity", "Relative humidity", "instantaneous", _PCT),
        _s("pm25", "PM2.5", "PM2.5 concentration", "instantaneous", _UGM3),
    ),
    "motion_sensor": (_s("motion", "Motion", "Motion", "event", _EVENT),),
    "door_sensor": (_s("door", "Door opened", "Door opening", "event", _EVENT),),
    "button": (_s("press", "Button pressed", "Button press", "event", _EVENT),),
    "ev_charger": (
        _s("energy", "Charged energy", "Electric energy", "cumulative", _KWH),
        _s("power", "Charging power", "Electric power", "instantaneous", _KW),
    ),
    "battery": (
        _s("soc", "State of charge", "State of charge", "instantaneous", _PCT),
        _s("power", "Battery power (charge +, discharge -)", "Electric power", "instantaneous", _KW),
    ),
    "pv_inverter": (
        _s("energy", "PV energy", "Electric energy", "cumulative", _KWH),
        _s("power", "PV power", "Electric power", "instantaneous", _KW),
    ),
    "transformer_meter": (
        _s("energy", "Transformer energy", "Electric energy", "cumulative", _KWH),
        _s("power", "Transformer load", "Electric power", "instantaneous", _KW),
    ),
}


def streams_of(kind: str) -> tuple[StreamSpec, ...]:
    """The datastreams a device of ``kind`` is provisioned with (empty for an unknown kind)."""
    return DEVICE_KINDS.get(kind, ())
