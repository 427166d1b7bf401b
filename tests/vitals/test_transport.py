"""The serial transport over real ptys, TCP sockets and pyserial's loopback."""

from __future__ import annotations

import asyncio
import os
import tty
from pathlib import Path

import pytest

from vitals.errors import PortClosed, PortError
from vitals.link import LinkSettings, Parity
from vitals.transport import is_pty, open_port

LINK = LinkSettings(19200, parity=Parity.ODD)


def test_reads_what_the_device_writes_on_a_pty() -> None:
    async def scenario() -> bytes:
        master, slave = os.openpty()
        tty.setraw(slave)
        try:
            port = await open_port(os.ttyname(slave), LINK)
            async with port:
                os.write(master, b"\x80\x01\x02\x03\x04")
                got = b""
                async with asyncio.timeout(2):
                    while len(got) < 5:
                        got += await port.read()
                await port.write(b"\x7d\x81")
                return got + os.read(master, 16)
        finally:
            os.close(master)
            os.close(slave)

    assert asyncio.run(scenario()) == b"\x80\x01\x02\x03\x04\x7d\x81"


def test_parity_is_dropped_on_a_pty_only() -> None:
    master, slave = os.openpty()
    try:
        assert is_pty(os.ttyname(slave))
        assert not is_pty("/dev/null")
        assert not is_pty("/no/such/port")
    finally:
        os.close(master)
        os.close(slave)


def test_a_pty_whose_device_goes_away_raises_port_closed() -> None:
    async def scenario() -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        port = await open_port(os.ttyname(slave), LINK)
        os.close(slave)
        os.close(master)
        with pytest.raises(PortClosed):
            async with asyncio.timeout(2):
                await port.read()
        await port.close()

    asyncio.run(scenario())


def test_missing_port_is_a_port_error_with_the_reason(tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyUSB9")
    with pytest.raises(PortError, match=r"cannot open .*ttyUSB9 at 19200 8O1: No such file"):
        asyncio.run(open_port(missing, LINK))


def test_garbage_url_is_a_port_error() -> None:
    with pytest.raises(PortError, match="cannot open"):
        asyncio.run(open_port("nonsense://\x00", LINK))


def test_loop_url_echoes_writes() -> None:
    async def scenario() -> bytes:
        port = await open_port("loop://", LinkSettings(9600))
        async with port:
            await port.write(b"R1580\r")
            async with asyncio.timeout(2):
                return await port.read()

    assert asyncio.run(scenario()) == b"R1580\r"


def test_socket_url_reads_from_a_serial_over_tcp_server() -> None:
    async def scenario() -> bytes:
        async def device(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"ST,GS,+0063.40kg\r\n")
            await writer.drain()
            await reader.read()  # stay connected until the reader hangs up
            writer.close()

        server = await asyncio.start_server(device, "127.0.0.1", 0)
        host, tcp_port = server.sockets[0].getsockname()[:2]
        async with server:
            port = await open_port(f"socket://{host}:{tcp_port}", LinkSettings(9600))
            async with port:
                got = b""
                async with asyncio.timeout(2):
                    while not got.endswith(b"\r\n"):
                        got += await port.read()
                return got

    assert asyncio.run(scenario()) == b"ST,GS,+0063.40kg\r\n"


def test_writing_to_a_closed_port_is_port_closed() -> None:
    async def scenario() -> None:
        port = await open_port("loop://", LinkSettings(9600))
        await port.close()
        with pytest.raises(PortClosed):
            await port.write(b"x")
        with pytest.raises(PortClosed):
            await port.read()

    asyncio.run(scenario())
