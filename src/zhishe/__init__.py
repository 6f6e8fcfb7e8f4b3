"""Zhishe (智社): the open, self-hosted smart-community platform."""

__version__ = "0.1.0"
