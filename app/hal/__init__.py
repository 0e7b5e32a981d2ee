"""Hardware abstraction: bus interfaces, sites, programmers and their backends.

Importing this package imports every backend subpackage/module so that each registers
its URL scheme (see programmer.register_scheme).
"""

from __future__ import annotations

import importlib
import pkgutil

_INTERFACE_MODULES = {"bus", "errors", "programmer"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _INTERFACE_MODULES and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
