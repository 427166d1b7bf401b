"""Serial link settings (baud rate, data bits, parity, stop bits) of a device."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Parity(StrEnum):
    """Parity, spelled as pyserial spells it."""

    NONE = "N"
    ODD = "O"
    EVEN = "E"


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """How a device's UART is configured, e.g. ``LinkSettings(19200, parity=Parity.ODD)``."""

    baudrate: int
    bytesize: int = 8
    parity: Parity = Parity.NONE
    stopbits: int = 1

    def __post_init__(self) -> None:
        if self.baudrate <= 0:
            raise ValueError(f"baud rate must be positive, not {self.baudrate}")
        if self.bytesize not in (5, 6, 7, 8):
            raise ValueError(f"data bits must be 5..8, not {self.bytesize}")
        if self.stopbits not in (1, 2):
            raise ValueError(f"stop bits must be 1 or 2, not {self.stopbits}")

    def __str__(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity.value}{self.stopbits}"

    @property
    def seconds_per_byte(self) -> float:
        """Time one character takes on the wire (start bit, data, parity, stop bits)."""
        bits = 1 + self.bytesize + (0 if self.parity is Parity.NONE else 1) + self.stopbits
        return bits / self.baudrate
