"""Sealing outbox data with AES-256-GCM, and the key files and variables that hold the keys."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest

from fhir.crypto import (
    KEY_BYTES,
    NONCE_BYTES,
    KeyRing,
    generate_key,
    key_id,
    key_ring_from_env,
    load_key_file,
    rotate_key_file,
)
from fhir.errors import OutboxKeyError

PLAINTEXT = b'{"name":"Nguyen Van Binh","cccd":"079085009876"}'
AAD = b"outbox/1\x00bundle\x00bv-quan-2\x00visit-1"


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_sealed_data_opens_with_the_same_key_and_binding() -> None:
    ring = KeyRing([generate_key()])
    assert ring.unseal(ring.seal(PLAINTEXT, aad=AAD), aad=AAD) == PLAINTEXT


def test_every_seal_uses_a_fresh_nonce() -> None:
    ring = KeyRing([generate_key()])
    blobs = [ring.seal(PLAINTEXT, aad=AAD) for _ in range(50)]
    nonces = {blob[9 : 9 + NONCE_BYTES] for blob in blobs}
    assert len(nonces) == len(blobs)


def test_sealed_data_does_not_contain_the_plaintext() -> None:
    blob = KeyRing([generate_key()]).seal(PLAINTEXT, aad=AAD)
    assert b"Nguyen" not in blob
    assert b"079085009876" not in blob


def test_data_moved_to_another_row_does_not_open() -> None:
    ring = KeyRing([generate_key()])
    blob = ring.seal(PLAINTEXT, aad=AAD)
    with pytest.raises(OutboxKeyError, match="moved from another row"):
        ring.unseal(blob, aad=b"outbox/1\x00bundle\x00bv-quan-2\x00visit-2")


@pytest.mark.parametrize("offset", [0, 1, 9, 21, 40, -1])
def test_a_flipped_byte_anywhere_is_refused(offset: int) -> None:
    ring = KeyRing([generate_key()])
    blob = bytearray(ring.seal(PLAINTEXT, aad=AAD))
    blob[offset] ^= 0x01
    with pytest.raises(OutboxKeyError):
        ring.unseal(bytes(blob), aad=AAD)


@pytest.mark.parametrize("length", [0, 1, 20, 36])
def test_truncated_data_is_refused_with_its_length(length: int) -> None:
    ring = KeyRing([generate_key()])
    blob = ring.seal(PLAINTEXT, aad=AAD)[:length]
    with pytest.raises(OutboxKeyError, match=f"truncated \\({length} bytes\\)"):
        ring.unseal(blob, aad=AAD)


def test_a_wrong_key_names_the_key_the_data_needs() -> None:
    writer, reader = generate_key(), generate_key()
    blob = KeyRing([writer]).seal(PLAINTEXT, aad=AAD)
    with pytest.raises(OutboxKeyError, match=f"sealed with key {key_id(writer)}"):
        KeyRing([reader]).unseal(blob, aad=AAD)


def test_a_retired_key_still_opens_what_it_sealed_and_the_new_key_seals() -> None:
    old, new = generate_key(), generate_key()
    blob = KeyRing([old]).seal(PLAINTEXT, aad=AAD)
    rotated = KeyRing([new, old])
    assert rotated.unseal(blob, aad=AAD) == PLAINTEXT
    assert rotated.seal(PLAINTEXT, aad=AAD)[1:9].hex() == key_id(new)
    assert rotated.key_ids == (key_id(new), key_id(old))


def test_repr_shows_key_ids_never_keys() -> None:
    key = generate_key()
    text = repr(KeyRing([key]))
    assert key_id(key) in text
    assert _b64(key) not in text
    assert key.hex() not in text


def test_a_key_check_token_passes_for_the_same_keys_and_fails_for_others() -> None:
    key = generate_key()
    token = KeyRing([key]).check_token(None)
    assert token is not None
    assert KeyRing([key]).check_token(token) is None
    with pytest.raises(OutboxKeyError):
        KeyRing([generate_key()]).check_token(token)


def test_a_key_check_token_under_a_retired_key_is_renewed() -> None:
    old, new = generate_key(), generate_key()
    token = KeyRing([old]).check_token(None)
    assert token is not None
    renewed = KeyRing([new, old]).check_token(token)
    assert renewed is not None
    assert KeyRing([new]).check_token(renewed) is None


@pytest.mark.parametrize("length", [0, 16, 31, 33])
def test_a_key_of_the_wrong_length_is_refused(length: int) -> None:
    with pytest.raises(OutboxKeyError, match=f"not {length}"):
        KeyRing([os.urandom(length)])


def test_a_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "outbox.key"
    first = load_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_file(path).current_id == first.current_id
    assert len(base64.b64decode(path.read_text().strip())) == KEY_BYTES


def test_processes_creating_the_key_file_together_get_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "outbox.key"
    ids: list[str] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        ids.append(load_key_file(path).current_id)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["outbox.key"]  # no temporary files left


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "outbox.key"
    load_key_file(path)
    path.chmod(mode)
    with pytest.raises(OutboxKeyError, match=f"mode {mode:04o}.*chmod 600"):
        load_key_file(path)


def test_a_missing_key_file_is_an_error_when_creation_is_off(tmp_path: Path) -> None:
    with pytest.raises(OutboxKeyError, match="does not exist"):
        load_key_file(tmp_path / "absent.key", create=False)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no key"),
        (b"\n# only a comment\n", "holds no key"),
        (b"not base64!!\n", "key 1 is not valid base64"),
        (base64.b64encode(os.urandom(16)) + b"\n", "key 1 is 16 bytes"),
        (b"\xff\xfe\x00garbage", "is not text"),
    ],
)
def test_a_malformed_key_file_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "outbox.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(OutboxKeyError, match=message):
        load_key_file(path)


def test_a_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.key"
    path.mkdir(mode=0o700)
    with pytest.raises(OutboxKeyError, match="not a regular file"):
        load_key_file(path, create=False)


def test_rotation_adds_a_current_key_and_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "outbox.key"
    before = load_key_file(path)
    blob = before.seal(PLAINTEXT, aad=AAD)
    after = rotate_key_file(path)
    assert after.current_id != before.current_id
    assert load_key_file(path).key_ids == (after.current_id, before.current_id)
    assert after.unseal(blob, aad=AAD) == PLAINTEXT
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keys_from_the_environment_current_first() -> None:
    new, old = generate_key(), generate_key()
    ring = key_ring_from_env("OUTBOX_KEY", environ={"OUTBOX_KEY": f"{_b64(new)}, {_b64(old)}"})
    assert ring.key_ids == (key_id(new), key_id(old))


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "OUTBOX_KEY is not set"),
        ({"OUTBOX_KEY": ""}, "holds no key"),
        ({"OUTBOX_KEY": "%%%"}, "key 1 is not valid base64"),
        ({"OUTBOX_KEY": base64.b64encode(b"short").decode()}, "key 1 is 5 bytes"),
    ],
)
def test_a_bad_environment_key_is_refused_without_echoing_it(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(OutboxKeyError, match=message) as caught:
        key_ring_from_env("OUTBOX_KEY", environ=environ)
    value = environ.get("OUTBOX_KEY")
    if value:
        assert value not in str(caught.value)


def test_a_fifo_in_place_of_the_key_file_is_refused_without_hanging(tmp_path: Path) -> None:
    path = tmp_path / "outbox.key"
    os.mkfifo(path, 0o600)
    with pytest.raises(OutboxKeyError, match="not a regular file"):
        load_key_file(path, create=False)
