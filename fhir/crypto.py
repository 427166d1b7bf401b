"""Sealing outbox data at rest with AES-256-GCM, and loading the keys that do it.

A sealed value is one self-describing blob, so the key that made it can be found after a
rotation::

    +---------+-------------+-------------+-----------------------------------+
    | version | key id      | nonce       | ciphertext ‖ GCM tag              |
    | 1 byte  | 8 bytes     | 12 bytes    | len(plaintext) + 16 bytes         |
    | 0x01    | SHA-256(k)  | random      |                                   |
    +---------+-------------+-------------+-----------------------------------+

- The nonce is 96 random bits, fresh for every message (NIST SP 800-38D §8.2.2: random
  nonces stay safe for up to 2³² messages under one key, far beyond a cabin's lifetime).
- The associated data is the caller's (the outbox binds each blob to its column, hospital and
  bundle id, so blobs cannot be swapped between rows) prefixed with the blob's own header, so
  the version and key id are authenticated too.
- The key id is the first 8 bytes of SHA-256 over a label and the key: it names a key without
  revealing it.

Keys come from a key file (one base64 key per line, the first one current, later ones retired
but still able to open old data) created on first use with mode 0600, or from an environment
variable holding the same list separated by commas.  The caller chooses which.  Every failure
is an :class:`~fhir.errors.OutboxKeyError` whose message never contains key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fhir.errors import OutboxKeyError

log = logging.getLogger(__name__)

KEY_BYTES = 32
"""AES-256."""
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_ID_BYTES = 8
_VERSION = b"\x01"
_HEADER_BYTES = len(_VERSION) + KEY_ID_BYTES
_KEY_ID_LABEL = b"telehealth-cabin outbox key id\x00"
_CHECK_TEXT = b"telehealth-cabin outbox key check"
_CHECK_AAD = b"key-check"


def generate_key() -> bytes:
    """A fresh random 256-bit key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def key_id(key: bytes) -> str:
    """The public name of a key (16 hex digits), as stored in every blob it sealed."""
    return _raw_key_id(key).hex()


def _raw_key_id(key: bytes) -> bytes:
    return hashlib.sha256(_KEY_ID_LABEL + key).digest()[:KEY_ID_BYTES]


class KeyRing:
    """The current key (seals) and retired keys (still open what they sealed).

    Not a value: it holds secrets, so its ``repr`` shows key ids only.
    """

    __slots__ = ("_ciphers", "_current")

    def __init__(self, keys: Iterable[bytes]) -> None:
        self._ciphers: dict[bytes, AESGCM] = {}
        current: bytes | None = None
        for key in keys:
            if len(key) != KEY_BYTES:
                raise OutboxKeyError(f"an outbox key must be {KEY_BYTES} bytes, not {len(key)}")
            kid = _raw_key_id(key)
            self._ciphers.setdefault(kid, AESGCM(key))
            current = kid if current is None else current
        if current is None:
            raise OutboxKeyError("no outbox key given")
        self._current = current

    def __repr__(self) -> str:
        retired = [kid.hex() for kid in self._ciphers if kid != self._current]
        return f"KeyRing(current={self._current.hex()}, retired={retired})"

    @property
    def current_id(self) -> str:
        """Key id that :meth:`seal` uses."""
        return self._current.hex()

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every key id this ring can open, the current one first."""
        return (self.current_id, *(k.hex() for k in self._ciphers if k != self._current))

    def seal(self, plaintext: bytes, *, aad: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` bound to ``aad`` under the current key."""
        header = _VERSION + self._current
        nonce = os.urandom(NONCE_BYTES)
        return header + nonce + self._ciphers[self._current].encrypt(nonce, plaintext, header + aad)

    def check_token(self, token: bytes | None) -> bytes | None:
        """Verify a key-check token kept beside sealed data; return a new one to store, or None.

        A store opened with the wrong keys then fails at once, not at its first read.  A missing
        token, or one sealed by a retired key, is replaced by one under the current key.
        """
        if token is not None:
            if self.unseal(token, aad=_CHECK_AAD) != _CHECK_TEXT:
                raise OutboxKeyError("the key check token holds the wrong text")
            if token[1:_HEADER_BYTES] == self._current:
                return None
        return self.seal(_CHECK_TEXT, aad=_CHECK_AAD)

    def unseal(self, blob: bytes, *, aad: bytes) -> bytes:
        """Decrypt a blob made by :meth:`seal` with the same ``aad``.

        Raises ``OutboxKeyError`` when the blob is malformed, its key is not in this ring, or it
        was altered or moved to another row (the tag does not verify).
        """
        self._check_shape(blob)
        header, kid = blob[:_HEADER_BYTES], blob[1:_HEADER_BYTES]
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise OutboxKeyError(
                f"sealed with key {kid.hex()}, which is not among the outbox keys "
                f"({', '.join(self.key_ids)}): load the key that wrote this data"
            )
        nonce = blob[_HEADER_BYTES : _HEADER_BYTES + NONCE_BYTES]
        try:
            return cipher.decrypt(nonce, blob[_HEADER_BYTES + NONCE_BYTES :], header + aad)
        except InvalidTag as exc:
            raise OutboxKeyError(
                f"sealed data (key {kid.hex()}) failed authentication: altered, truncated or "
                "moved from another row"
            ) from exc

    @staticmethod
    def _check_shape(blob: bytes) -> None:
        if len(blob) < _HEADER_BYTES + NONCE_BYTES + TAG_BYTES:
            raise OutboxKeyError(f"sealed data is truncated ({len(blob)} bytes)")
        if blob[:1] != _VERSION:
            raise OutboxKeyError(f"sealed data has unknown format version {blob[0]}")


def _decode_keys(text: str, *, source: str, separator: str | None) -> list[bytes]:
    """Base64 keys, one per line (or per ``separator``); blank lines and ``#`` comments skipped."""
    keys: list[bytes] = []
    items = text.split(separator) if separator else text.splitlines()
    for number, raw in enumerate(items, 1):
        item = raw.strip()
        if not item or item.startswith("#"):
            continue
        try:
            key = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise OutboxKeyError(f"{source}: key {number} is not valid base64") from None
        if len(key) != KEY_BYTES:
            raise OutboxKeyError(
                f"{source}: key {number} is {len(key)} bytes; AES-256 needs {KEY_BYTES}"
            )
        keys.append(key)
    if not keys:
        raise OutboxKeyError(f"{source}: holds no key")
    return keys


def _encode_keys(keys: Iterable[bytes]) -> bytes:
    return b"".join(base64.b64encode(key) + b"\n" for key in keys)


def key_ring_from_env(name: str, *, environ: Mapping[str, str] | None = None) -> KeyRing:
    """Keys from an environment variable: base64 keys separated by commas, current first."""
    value = (os.environ if environ is None else environ).get(name)
    if value is None:
        raise OutboxKeyError(f"environment variable {name} is not set")
    return KeyRing(_decode_keys(value, source=f"environment variable {name}", separator=","))


def load_key_file(path: Path, *, create: bool = True) -> KeyRing:
    """Keys from ``path``; with ``create``, a fresh key file is made first if there is none.

    Creation is atomic (written to a private temporary file, fsynced, then hard-linked into
    place, which fails if another process got there first), so a crash never leaves a
    half-written key and two processes starting together end up with the same key.  A key
    file that group or others may read or write is refused, as ssh refuses such private keys.
    Blocking (file I/O, fsync): async callers use ``asyncio.to_thread``.
    """
    if create and not path.exists():
        _create_key_file(path, [generate_key()])
    return KeyRing(_read_key_file(path))


def _read_key_file(path: Path) -> list[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO planted there must not hang us
    except FileNotFoundError:
        raise OutboxKeyError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise OutboxKeyError(f"key file {path} cannot be opened: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OutboxKeyError(f"key file {path} is not a regular file")
        if info.st_mode & 0o077:
            raise OutboxKeyError(
                f"key file {path} has mode {stat.S_IMODE(info.st_mode):04o}: group or others "
                f"may use it; run `chmod 600 {path}`"
            )
        raw = os.read(fd, 64 * 1024)
    finally:
        os.close(fd)
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise OutboxKeyError(f"key file {path} is not text (base64 keys, one a line)") from None
    return _decode_keys(text, source=f"key file {path}", separator=None)


def rotate_key_file(path: Path) -> KeyRing:
    """Put a fresh current key at the head of the key file; the old ones stay, retired.

    The file is replaced atomically (temporary file, fsync, rename), mode 0600 throughout.
    """
    keys = [generate_key(), *_read_key_file(path)]
    _write_private(path, _encode_keys(keys), replace=True)
    log.info("outbox key rotated: %s is now current", key_id(keys[0]))
    return KeyRing(keys)


def _create_key_file(path: Path, keys: list[bytes]) -> None:
    _write_private(path, _encode_keys(keys), replace=False)
    log.info("created outbox key file %s (key %s)", path, key_id(keys[0]))


def _write_private(path: Path, content: bytes, *, replace: bool) -> None:
    """Write ``content`` to ``path`` with mode 0600, all or nothing."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".outbox-key-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            if replace:
                os.replace(temporary, path)
            else:
                try:
                    os.link(temporary, path)
                except FileExistsError:
                    log.info("key file %s was created by another process; using it", path)
        finally:
            Path(temporary).unlink(missing_ok=True)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as exc:
        raise OutboxKeyError(f"cannot write key file {path}: {exc.strerror or exc}") from exc
