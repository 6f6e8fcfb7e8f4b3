"""The SensorThings API v1.1 data model as the query layer sees it: entity types, their entity
sets, their properties (with a coarse kind) and their navigation properties.

Taken from OGC 18-088 clause 8 (the sensing entities) with the MultiDatastream extension
(clause 14.1): a caller that does not serve MultiDatastreams answers 404 for them. Property kinds
decide what a path may continue with: after a ``json``, ``geometry`` or ``any`` property (a Thing's
``properties``, a Datastream's ``unitOfMeasurement``, an Observation's ``result``) any member path
is allowed (``properties/building/floor``); after any other property the path must end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from zhishe.iot.odata.errors import QueryError, bad, shown

__all__ = [
    "ENTITY_SETS",
    "ENTITY_TYPES",
    "EntityType",
    "PropertyKind",
    "entity_type",
    "entity_type_of_set",
]

#: ``id``: the entity's identifier; ``string``; ``time``: an instant or an interval (the resolver
#: says which); ``json``: a JSON object or array; ``geometry``: GeoJSON; ``any``: a value of any
#: JSON type (an Observation's ``result``).
PropertyKind = Literal["id", "string", "time", "json", "geometry", "any"]

_COMMON: dict[str, PropertyKind] = {"id": "id", "name": "string", "description": "string"}


@dataclass(frozen=True, slots=True)
class EntityType:
    """One entity type: ``Datastream`` in the entity set ``Datastreams``."""

    name: str
    set_name: str
    properties: Mapping[str, PropertyKind]
    #: navigation property name → (target entity type name, whether it is a collection)
    navigation: Mapping[str, tuple[str, bool]]

    def kind_of(self, name: str) -> PropertyKind | None:
        """The kind of property ``name``, or None when there is no such property."""
        return self.properties.get(name)

    def target_of(self, name: str) -> tuple[EntityType, bool] | None:
        """The entity type a navigation property leads to and whether it is a collection."""
        found = self.navigation.get(name)
        return None if found is None else (ENTITY_TYPES[found[0]], found[1])


def _type(
    name: str,
    set_name: str,
    properties: dict[str, PropertyKind],
    navigation: dict[str, tuple[str, bool]],
) -> EntityType:
    return EntityType(name, set_name, MappingProxyType(properties), MappingProxyType(navigation))


_TYPES = (
    _type(
        "Thing",
        "Things",
        {**_COMMON, "properties": "json"},
        {
            "Locations": ("Location", True),
            "HistoricalLocations": ("HistoricalLocation", True),
            "Datastreams": ("Datastream", True),
            "MultiDatastreams": ("MultiDatastream", True),
        },
    ),
    _type(
        "Location",
        "Locations",
        {**_COMMON, "encodingType": "string", "location": "geometry", "properties": "json"},
        {"Things": ("Thing", True), "HistoricalLocations": ("HistoricalLocation", True)},
    ),
    _type(
        "HistoricalLocation",
        "HistoricalLocations",
        {"id": "id", "time": "time"},
        {"Thing": ("Thing", False), "Locations": ("Location", True)},
    ),
    _type(
        "Datastream",
        "Datastreams",
        {
            **_COMMON,
            "unitOfMeasurement": "json",
            "observationType": "string",
            "observedArea": "geometry",
            "phenomenonTime": "time",
            "resultTime": "time",
            "properties": "json",
        },
        {
            "Thing": ("Thing", False),
            "Sensor": ("Sensor", False),
            "ObservedProperty": ("ObservedProperty", False),
            "Observations": ("Observation", True),
        },
    ),
    _type(
        "MultiDatastream",
        "MultiDatastreams",
        {
            **_COMMON,
            "unitOfMeasurements": "json",
            "observationType": "string",
            "multiObservationDataTypes": "json",
            "observedArea": "geometry",
            "phenomenonTime": "time",
            "resultTime": "time",
            "properties": "json",
        },
        {
            "Thing": ("Thing", False),
            "Sensor": ("Sensor", False),
            "ObservedProperties": ("ObservedProperty", True),
            "Observations": ("Observation", True),
        },
    ),
    _type(
        "Sensor",
        "Sensors",
        {**_COMMON, "encodingType": "string", "metadata": "any", "properties": "json"},
        {"Datastreams": ("Datastream", True), "MultiDatastreams": ("MultiDatastream", True)},
    ),
    _type(
        "ObservedProperty",
        "ObservedProperties",
        {**_COMMON, "definition": "string", "properties": "json"},
        {"Datastreams": ("Datastream", True), "MultiDatastreams": ("MultiDatastream", True)},
    ),
    _type(
        "Observation",
        "Observations",
        {
            "id": "id",
            "phenomenonTime": "time",
            "resultTime": "time",
            "result": "any",
            "resultQuality": "any",
            "validTime": "time",
            "parameters": "json",
        },
        {
            "Datastream": ("Datastream", False),
            "MultiDatastream": ("MultiDatastream", False),
            "FeatureOfInterest": ("FeatureOfInterest", False),
        },
    ),
    _type(
        "FeatureOfInterest",
        "FeaturesOfInterest",
        {**_COMMON, "encodingType": "string", "feature": "geometry", "properties": "json"},
        {"Observations": ("Observation", True)},
    ),
)

#: Entity type name → entity type.
ENTITY_TYPES: Mapping[str, EntityType] = MappingProxyType({t.name: t for t in _TYPES})
#: Entity set name → entity type.
ENTITY_SETS: Mapping[str, EntityType] = MappingProxyType({t.set_name: t for t in _TYPES})


def entity_type_of_set(set_name: str, *, option: str = "entity") -> EntityType:
    """The entity type served by entity set ``set_name`` (``Datastreams`` → ``Datastream``)."""
    found = ENTITY_SETS.get(set_name)
    if found is None:
        raise bad(
            option, f"unknown entity set {shown(set_name)}; the entity sets are {', '.join(ENTITY_SETS)}"
        )
    return found


def entity_type(name: str) -> EntityType:
    """The entity type named by an entity set name or an entity type name."""
    found = ENTITY_SETS.get(name) or ENTITY_TYPES.get(name)
    if found is None:
        raise QueryError(
            f"unknown entity set {shown(name)}; the entity sets are {', '.join(ENTITY_SETS)}",
            detail={"entity": name},
        )
    return found
