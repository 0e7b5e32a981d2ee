"""The built-in simulated programmer (bus-level chip models); registers ``sim://``."""

from app.hal.sim import programmer as programmer
