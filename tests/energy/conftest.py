"""The energy tests reuse the IoT world: an operator, six households, a transformer and meters."""

from iot.iot_world import iw

__all__ = ["iw"]
