from iot.iot_world import iw

__all__ = ["iw"]
