"""The device database as installed data (``app.device_db`` in the distribution).

Only JSON lives here; app/devicedb reads it through app.core.package_data.
"""
