"""The browser peer: Debian's Chromium driven by Playwright, with a fake camera and microphone.

No browser is downloaded: Playwright launches the Debian package's binary
(``/usr/bin/chromium``, or ``$CHROMIUM``). The flags are the ones this machine needs
(DESIGN.md, "Real peers for tests"): no sandbox (tests run as root), no GPU, nothing that
reaches for the network, fake media devices, consent to them without a prompt, and autoplay.
When Chromium or Playwright is missing the tests skip, except under ``CI=true`` where they
fail (:func:`tests.peers.require`).

Fixtures: ``browser`` (one Chromium for the session, camera consent given) and
``browser_without_media_consent`` (a Chromium that refuses camera and microphone, for the
"no camera permission" state).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.peers import require

if TYPE_CHECKING:  # Playwright is imported when a browser is needed, so its absence can skip
    from playwright.sync_api import Browser, Playwright

CHROMIUM_VARIABLE = "CHROMIUM"
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")

BASE_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # real host addresses in ICE candidates (not mDNS names, which aiortc peers here
    # cannot resolve) whether or not camera permission was given
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)
MEDIA_CONSENT_ARG = "--use-fake-ui-for-media-stream"
"""Grants camera and microphone without a prompt; without it, Playwright's Chromium refuses."""


def chromium_path() -> Path:
    """The Chromium binary the tests use: ``$CHROMIUM``, else Debian's package."""
    override = os.environ.get(CHROMIUM_VARIABLE)
    return Path(override) if override else DEFAULT_CHROMIUM


def chromium_available() -> bool:
    """Whether Playwright is installed and the Chromium binary is there and executable."""
    path = chromium_path()
    return (
        importlib.util.find_spec("playwright") is not None
        and path.is_file()
        and os.access(path, os.X_OK)
    )


def require_chromium() -> None:
    """Skips the calling test (fails it under CI) unless Chromium can be launched."""
    require(
        chromium_available(),
        f"no Chromium at {chromium_path()} (apt-get install chromium, or set {CHROMIUM_VARIABLE})",
    )


def launch_chromium(playwright: Playwright, *, media_consent: bool = True) -> Browser:
    """A headless Chromium with fake media devices; ``media_consent`` grants them."""
    args = [*BASE_ARGS, MEDIA_CONSENT_ARG] if media_consent else list(BASE_ARGS)
    return playwright.chromium.launch(
        executable_path=str(chromium_path()), headless=True, args=args
    )


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver for one test module (sync API: use it from the test thread only).

    Module scope, not session: while the sync API is active it keeps an event loop running in
    the main thread, and any later test that calls ``asyncio.run`` would fail.
    """
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """One Chromium per test module; tests isolate themselves with their own contexts."""
    launched = launch_chromium(playwright_driver)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def browser_without_media_consent(playwright_driver: Playwright) -> Iterator[Browser]:
    """A Chromium that refuses camera and microphone (getUserMedia: NotAllowedError)."""
    launched = launch_chromium(playwright_driver, media_consent=False)
    try:
        yield launched
    finally:
        launched.close()
