"""The Redis peer for tests: where it is, whether it answers, and a private key prefix per test.

Tests share the machine's Redis (DESIGN.md, "Real peers for tests"); ``SIGNALING_TEST_REDIS``
points them at another one. Each test works under its own prefix (``sigtest:{uuid}:``) and
deletes every key under it afterwards, so tests never see each other's state and leave
nothing behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from redis.exceptions import RedisError

from tests.peers import require

DEFAULT_URL = "redis://127.0.0.1:6379/0"
URL_VARIABLE = "SIGNALING_TEST_REDIS"
_PING_TIMEOUT_S = 1.0
_GLOB_SPECIAL = "\\*?[]^"


def redis_url() -> str:
    """The Redis the tests use: ``$SIGNALING_TEST_REDIS``, else the machine's own."""
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


def redis_available() -> bool:
    """Whether that Redis answers PING within a second."""
    try:
        client = redis.Redis.from_url(
            redis_url(), socket_timeout=_PING_TIMEOUT_S, socket_connect_timeout=_PING_TIMEOUT_S
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (RedisError, OSError, ValueError):
        return False


def require_redis() -> str:
    """Skips the calling test (fails it under CI) unless Redis answers; returns its URL."""
    url = redis_url()
    require(
        redis_available(),
        f"no Redis answers PING at {url} (start redis-server, or set {URL_VARIABLE})",
    )
    return url


def unique_prefix() -> str:
    """A key prefix no other test uses."""
    return f"sigtest:{uuid.uuid4().hex}:"


def delete_prefix(prefix: str, *, url: str | None = None) -> int:
    """UNLINK every key under ``prefix`` (found with SCAN); returns how many there were."""
    pattern = "".join(f"\\{c}" if c in _GLOB_SPECIAL else c for c in prefix) + "*"
    client = redis.Redis.from_url(url or redis_url(), socket_timeout=5.0)
    try:
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(client.unlink(*batch))
        return deleted
    finally:
        client.close()


@contextmanager
def redis_prefix(url: str | None = None) -> Iterator[str]:
    """A fresh prefix for one test; its keys are deleted when the block ends."""
    prefix = unique_prefix()
    try:
        yield prefix
    finally:
        delete_prefix(prefix, url=url)
