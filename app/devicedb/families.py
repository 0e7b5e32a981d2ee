"""Device families, their folder names, and the algorithm names the database may refer to."""

from __future__ import annotations

from enum import StrEnum


class Family(StrEnum):
    """A device family, spelt as in the JSON ``family`` field."""

    SPI_NOR = "spi-nor"
    I2C_EEPROM = "i2c-eeprom"
    STM32_UART = "stm32-uart"


#: family -> folder under device_db/
FAMILY_DIRS: dict[Family, str] = {
    Family.SPI_NOR: "spi_nor",
    Family.I2C_EEPROM: "i2c_eeprom",
    Family.STM32_UART: "stm32_uart",
}
FAMILIES: tuple[Family, ...] = tuple(Family)
DIR_FAMILIES: dict[str, Family] = {folder: family for family, folder in FAMILY_DIRS.items()}

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
