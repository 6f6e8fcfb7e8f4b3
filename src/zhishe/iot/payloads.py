"""Reading payloads as devices and gateways send them, turned into ``ingest.Incoming`` readings.

- the simple batch of ``POST /api/v1/iot/readings``: a JSON array of ``{datastream, time, value}``
  (or ``{"readings": [...]}``), or NDJSON, one reading per line;
- SensorThings ``CreateObservations`` (OGC 18-088 §11.2, the data-array extension): an array of
  ``{"Datastream": {"@iot.id": n}, "components": ["phenomenonTime", "result", …],
  "dataArray@iot.count": k, "dataArray": [[…], …]}``;
- one SensorThings Observation, as published to ``v1.1/Datastreams(<id>)/Observations``;
- ThingsBoard telemetry: ``{"ts": ms, "values": {key: value}}``, a flat ``{key: value}`` (the time
  is the arrival), or an array of either.

A payload that is not JSON at all is refused as a whole (``Invalid``); an item inside it that cannot
be read becomes a rejected reading with its reason, and the rest are still stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from zhishe.core import clock
from zhishe.core.errors import Invalid
from zhishe.iot.ingest import Incoming

__all__ = [
    "STREAM_TOPIC",
    "parse_batch",
    "parse_create_observations",
    "parse_observation",
    "parse_single_observation",
    "parse_telemetry",
]

#: The SensorThings MQTT create topic: ``v1.1/Datastreams(<id>)/Observations``.
STREAM_TOPIC = re.compile(r"^v1\.1/Datastreams\((\d{1,18})\)/Observations$")


def _json(body: bytes, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"the {what} is not valid JSON: {exc}", detail={"body": str(exc)}) from exc


def parse_batch(body: bytes, *, ndjson: bool = False) -> list[Incoming]:
    """The simple batch: a JSON array (or ``{"readings": [...]}``) or NDJSON lines."""
    stripped = body.lstrip()
    if ndjson or (stripped[:1] == b"{" and b"\n{" in body.strip()):
        items: list[Any] = []
        problems: dict[int, str] = {}
        for number, line in enumerate(text for text in body.splitlines() if text.strip()):
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                items.append(None)
                problems[number] = f"line {number + 1} is not valid JSON: {exc}"
        return [
            Incoming(index=i, datastream=None, time=None, value=None, problem=problems[i])
            if i in problems
            else _simple(i, item)
            for i, item in enumerate(items)
        ]
    data = _json(body, "batch")
    if isinstance(data, Mapping) and "readings" in data:
        data = data["readings"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise Invalid("the batch must be a JSON array of {datastream, time, value} objects")
    return [_simple(i, item) for i, item in enumerate(data)]


def _simple(index: int, item: Any) -> Incoming:
    if not isinstance(item, Mapping):
        return Incoming(
            index, None, None, None, problem="each reading must be an object {datastream, time, value}"
        )
    missing = [k for k in ("datastream", "time", "value") if k not in item]
    if missing:
        return Incoming(index, item.get("datastream"), None, None, problem=f"missing {', '.join(missing)}")
    return Incoming(index, item["datastream"], item["time"], item["value"])


def parse_create_observations(body: bytes) -> list[tuple[int, Any, list[Incoming]]]:
    """SensorThings CreateObservations: per group, (group number, datastream id, its readings).

    Readings are numbered across the whole request in order, as the response lists them.
    """
    data = _json(body, "CreateObservations request")
    if not isinstance(data, list):
        raise Invalid(
            "CreateObservations expects a JSON array of {Datastream, components, dataArray} objects"
        )
    groups: list[tuple[int, Any, list[Incoming]]] = []
    index = 0
    for number, group in enumerate(data):
        if not isinstance(group, Mapping):
            raise Invalid(f"CreateObservations item {number} is not an object", detail={"item": number})
        stream = group.get("Datastream")
        stream_id = stream.get("@iot.id") if isinstance(stream, Mapping) else None
        components = group.get("components")
        rows = group.get("dataArray")
        readings: list[Incoming] = []
        problem = None
        if stream_id is None:
            problem = 'the group has no Datastream {"@iot.id": …}'
        elif not isinstance(components, list) or not all(isinstance(c, str) for c in components):
            problem = "components must be a list of names"
        elif "phenomenonTime" not in components or "result" not in components:
            problem = "components must include phenomenonTime and result"
        elif not isinstance(rows, list):
            problem = "dataArray must be a list of rows"
        if problem is not None:
            count = len(rows) if isinstance(rows, list) else 1
            for _ in range(max(count, 1)):
                readings.append(Incoming(index, stream_id, None, None, problem=problem))
                index += 1
            groups.append((number, stream_id, readings))
            continue
        assert isinstance(components, list) and isinstance(rows, list)
        at_time, at_result = components.index("phenomenonTime"), components.index("result")
        for row in rows:
            if not isinstance(row, list) or len(row) != len(components):
                readings.append(
                    Incoming(
                        index,
                        stream_id,
                        None,
                        None,
                        problem=f"each dataArray row must have {len(components)} values",
                    )
                )
            else:
                readings.append(Incoming(index, stream_id, row[at_time], row[at_result]))
            index += 1
        groups.append((number, stream_id, readings))
    return groups


def parse_observation(body: bytes, stream_id: int) -> list[Incoming]:
    """One SensorThings Observation (or an array of them) for a known datastream (MQTT create)."""
    data = _json(body, "Observation")
    items = data if isinstance(data, list) else [data]
    found: list[Incoming] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or "result" not in item:
            found.append(Incoming(i, stream_id, None, None, problem="an Observation needs a result"))
            continue
        moment = item.get("phenomenonTime") or item.get("resultTime") or clock.now().isoformat()
        found.append(Incoming(i, stream_id, moment, item["result"]))
    return found


def parse_single_observation(body: bytes) -> list[Incoming]:
    """One SensorThings Observation with its Datastream (``POST Observations``)."""
    data = _json(body, "Observation")
    if not isinstance(data, Mapping):
        raise Invalid("an Observation must be a JSON object")
    stream = data.get("Datastream")
    stream_id = stream.get("@iot.id") if isinstance(stream, Mapping) else None
    if stream_id is None:
        raise Invalid(
            'an Observation needs its Datastream: {"Datastream": {"@iot.id": …}}',
            detail={"field": "Datastream"},
        )
    if "result" not in data:
        raise Invalid("an Observation needs a result", detail={"field": "result"})
    moment = data.get("phenomenonTime") or data.get("resultTime") or clock.now().isoformat()
    return [Incoming(0, stream_id, moment, data["result"])]


def parse_telemetry(body: bytes) -> list[Incoming]:
    """ThingsBoard telemetry: ``{"ts", "values"}``, flat ``{key: value}``, or an array of either."""
    data = _json(body, "telemetry")
    items = data if isinstance(data, list) else [data]
    found: list[Incoming] = []
    index = 0
    for item in items:
        if not isinstance(item, Mapping):
            found.append(Incoming(index, None, None, None, problem="telemetry must be an object"))
            index += 1
            continue
        if "values" in item and "ts" in item:
            moment, values = item["ts"], item["values"]
        else:
            moment, values = clock.now().isoformat(), item
        if not isinstance(values, Mapping) or not values:
            found.append(Incoming(index, None, None, None, problem="values must be an object of key: value"))
            index += 1
            continue
        for key, value in values.items():
            found.append(Incoming(index, None, moment, value, key=str(key)))
            index += 1
    return found
