"""Device families, their folder names, and the algorithm each family is programmed with."""

from __future__ import annotations

from enum import StrEnum


class Family(StrEnum):
    """A device family, spelt as in the JSON ``family`` field."""

    SPI_NOR = "spi-nor"
    I2C_EEPROM = "i2c-eeprom"
    STM32_UART = "stm32-uart"
    SPI_EEPROM = "spi-eeprom"
    DATAFLASH = "dataflash"
    MICROWIRE = "microwire"
    CORTEX_M = "cortex-m"


#: family -> folder under device_db/
FAMILY_DIRS: dict[Family, str] = {
    Family.SPI_NOR: "spi_nor",
    Family.I2C_EEPROM: "i2c_eeprom",
    Family.STM32_UART: "stm32_uart",
    Family.SPI_EEPROM: "spi_eeprom",
    Family.DATAFLASH: "dataflash",
    Family.MICROWIRE: "microwire",
    Family.CORTEX_M: "cortex_m",
}
FAMILIES: tuple[Family, ...] = tuple(Family)
DIR_FAMILIES: dict[str, Family] = {folder: family for family, folder in FAMILY_DIRS.items()}

#: Bus names understood by DeviceDatabase.identify().
ID_BUSES: tuple[str, ...] = ("jedec", "stm32_pid", "swd")


#: family -> the name of the algorithm (app.algorithms registry) that programs it. The
#: database names algorithms by these names; tests/test_devicedb_validation.py checks
#: that the registry holds exactly these, so this module needs no import of the layer
#: above it.
FAMILY_ALGORITHMS: dict[Family, str] = {
    Family.SPI_NOR: "spi_nor",
    Family.I2C_EEPROM: "i2c_eeprom",
    Family.STM32_UART: "stm32_uart",
    Family.SPI_EEPROM: "spi_eeprom",
    Family.DATAFLASH: "dataflash",
    Family.MICROWIRE: "microwire",
    #: also what programs an STM32 entry's part (its SWD facts) on a site with SWD
    Family.CORTEX_M: "cortex_m_swd",
}
KNOWN_ALGORITHMS: frozenset[str] = frozenset(FAMILY_ALGORITHMS.values())
