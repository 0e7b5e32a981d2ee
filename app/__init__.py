"""Socketeer: a device-programming workstation for production and repair."""

__version__ = "0.1.0"
