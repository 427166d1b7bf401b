"""Serial ports opened by pyserial URL and read from asyncio without blocking the event loop.

Ports are named as pyserial names them: a device path (``/dev/ttyUSB0``), a pty or a symlink
to one, ``socket://host:port`` (a serial-over-TCP server), ``loop://`` (a loopback for tests).
Ports with a file descriptor are read from the event loop's selector (``add_reader``), so a
byte is handled as soon as the kernel has it; ports without one (``loop://``) are polled every few
milliseconds.  Opening and writing run in worker threads.

pyserial-asyncio would cover the descriptor case but not ``loop://``/``spy://`` and not our
error translation, so this module stays: every ``serial.SerialException`` and ``OSError`` leaves
it as :class:`~vitals.errors.PortError` (or :class:`~vitals.errors.PortClosed` when the device
went away).
"""

from __future__ import annotations

import asyncio
import logging
import os
import termios
from types import TracebackType
from typing import Protocol, Self

import serial

from vitals.errors import PortClosed, PortError
from vitals.link import LinkSettings, Parity

log = logging.getLogger(__name__)

_READ_CHUNK = 4096
_POLL_INTERVAL_S = 0.005
_PTY_SLAVE_MAJORS = range(136, 144)


class Port(Protocol):
    """What a device session needs from a port (an in-memory stand-in implements it in tests)."""

    name: str

    async def read(self) -> bytes:
        """Wait for and return at least one byte; raise ``PortClosed`` when the port is gone."""
        ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


class PortOpener(Protocol):
    async def __call__(self, url: str, link: LinkSettings) -> Port: ...


class _PySerial(Protocol):
    """The part of a pyserial port object (any URL handler's) used here."""

    timeout: float | None

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...

    def open(self) -> None: ...


class SerialPort:
    """A pyserial port wrapped for asyncio.  Use :func:`open_port` to create one."""

    def __init__(self, port: _PySerial, name: str) -> None:
        self._port = port
        self.name = name
        self._fd = _fd_of(port)
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def read(self) -> bytes:
        if self._closed:
            raise PortClosed(f"{self.name}: port is closed")
        if self._fd is None:
            return await self._read_polling()
        loop = asyncio.get_running_loop()
        while True:
            data = self._read_available()
            if data:
                return data
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self._fd, _set_done, ready)
            try:
                await ready
            finally:
                loop.remove_reader(self._fd)

    def _read_available(self) -> bytes:
        """Read what is waiting now (the port's timeout is 0, so this never blocks)."""
        try:
            waiting = self._port.in_waiting
            return bytes(self._port.read(min(max(waiting, 1), _READ_CHUNK)))
        except (serial.SerialException, OSError) as exc:
            raise PortClosed(f"{self.name}: {_reason(exc)}") from exc

    async def _read_polling(self) -> bytes:
        while True:
            data = self._read_available()  # timeout 0: never blocks
            if data:
                return data
            await asyncio.sleep(_POLL_INTERVAL_S)

    async def write(self, data: bytes) -> None:
        if self._closed:
            raise PortClosed(f"{self.name}: port is closed")
        try:
            await asyncio.to_thread(self._port.write, data)
        except (serial.SerialException, OSError) as exc:
            raise PortClosed(f"{self.name}: write failed: {_reason(exc)}") from exc

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.to_thread(self._port.close)
        except (serial.SerialException, OSError) as exc:  # closing a vanished device
            log.debug("%s: close failed: %s", self.name, exc)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def open_port(url: str, link: LinkSettings) -> SerialPort:
    """Open ``url`` with ``link`` settings; raises :class:`PortError` with the reason.

    A pseudo-terminal has no UART and Linux refuses parity on it (``EINVAL``); on a pty the port
    is opened without parity instead, which changes nothing about the bytes it carries.
    """

    def _open(parity: Parity) -> _PySerial:
        port: _PySerial = serial.serial_for_url(
            url,
            do_not_open=True,
            baudrate=link.baudrate,
            bytesize=link.bytesize,
            parity=parity.value,
            stopbits=link.stopbits,
            timeout=0,
            write_timeout=2.0,
        )
        if isinstance(port, serial.Serial):
            port.exclusive = True
        port.open()
        return port

    def _open_any() -> _PySerial:
        try:
            return _open(link.parity)
        except (termios.error, serial.SerialException):
            if link.parity is Parity.NONE or not is_pty(url):
                raise
            log.debug("%s is a pty: opening it without parity", url)
            return _open(Parity.NONE)

    try:
        port = await asyncio.to_thread(_open_any)
    except (serial.SerialException, OSError, ValueError, termios.error) as exc:
        raise PortError(f"cannot open {url} at {link}: {_reason(exc)}") from exc
    return SerialPort(port, url)


def _reason(exc: BaseException) -> str:
    """A short reason: the OS's words for the error number when there is one."""
    number = getattr(exc, "errno", None)
    if isinstance(number, int) and number > 0:
        return os.strerror(number)
    return str(exc)


def is_pty(url: str) -> bool:
    """Whether ``url`` names a Unix98 pseudo-terminal slave (directly or through a symlink)."""
    try:
        return os.major(os.stat(url).st_rdev) in _PTY_SLAVE_MAJORS
    except (OSError, ValueError):
        return False


def _fd_of(port: object) -> int | None:
    """The port's file descriptor, or None for URL handlers that have none (``loop://``)."""
    fileno = getattr(port, "fileno", None)
    if fileno is None:
        return None
    try:
        return int(fileno())
    except (OSError, ValueError, AttributeError, serial.SerialException):
        return None
