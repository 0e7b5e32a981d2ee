"""Device families, their folder names, and the algorithm names the database may refer to."""

from __future__ import annotations

#: family name (as written in the JSON) -> folder under device_db/
FAMILY_DIRS: dict[str, str] = {
    "spi-nor": "spi_nor",
    "i2c-eeprom": "i2c_eeprom",
    "stm32-uart": "stm32_uart",
}
FAMILIES: tuple[str, ...] = tuple(FAMILY_DIRS)
DIR_FAMILIES: dict[str, str] = {folder: family for family, folder in FAMILY_DIRS.items()}

#: Bus names understood by DeviceDatabase.identify().
ID_BUSES: tuple[str, ...] = ("jedec", "stm32_pid")


#: Algorithms the catalogue already describes parts for but that are not built yet
#: (the STM32 UART bootloader arrives with the real-hardware backends).
PLANNED_ALGORITHMS: frozenset[str] = frozenset({"stm32_uart"})


def known_algorithms() -> frozenset[str]:
    """Names of the programming algorithms a device entry may name: the algorithm
    registry's, plus the planned ones (which the engine refuses clearly)."""
    from app.algorithms import algorithm_names

    return algorithm_names() | PLANNED_ALGORITHMS
