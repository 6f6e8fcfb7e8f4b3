"""IoT ingestion: sites, devices, SensorThings datastreams, readings, rollups and the MQTT bridge.

Tables (``models.py``): sites and their residents, devices (SensorThings Things) with their own
rotatable tokens, sensors, observed properties, datastreams, the landing table of recent readings,
the latest value per datastream, and 15-minute, hourly and daily rollups. Full history is a Delta
table in the lake (``history.py``).

Standards: OGC SensorThings API v1.1 (``/sensorthings/v1.1``: the read API and CreateObservations,
and the MQTT create topic), and ThingsBoard's device telemetry payload over HTTP and MQTT.
"""
