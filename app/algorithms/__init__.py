"""Chip algorithms, registered by name; the device DB refers to them by that name.

Each module in this package that defines an algorithm decorates its class with
``@register``; the package imports all its modules, so adding an algorithm is adding a
file. An algorithm is looked up in the module of its own name first (``spi_nor`` in
app.algorithms.spi_nor): a command that programs one part imports one algorithm, not
all of them.
"""

from __future__ import annotations

import importlib
import pkgutil
from contextlib import suppress
from typing import TypeVar

from app.algorithms.base import ChipAlgorithm

_REGISTRY: dict[str, type[ChipAlgorithm]] = {}
A = TypeVar("A", bound=type[ChipAlgorithm])


def register(cls: A) -> A:
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name not in ("base",) and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


def algorithm_names() -> frozenset[str]:
    _load_all()
    return frozenset(_REGISTRY)


def has_algorithm(name: str) -> bool:
    """Whether this version has an algorithm called ``name``."""
    if name not in _REGISTRY and name.isidentifier() and name != "base":
        with suppress(ModuleNotFoundError):
            importlib.import_module(f"{__name__}.{name}")
    if name not in _REGISTRY:
        _load_all()
    return name in _REGISTRY


def get_algorithm(name: str) -> type[ChipAlgorithm]:
    has_algorithm(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"no algorithm named {name!r} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


__all__: list[str] = ["algorithm_names", "get_algorithm", "has_algorithm", "register"]
