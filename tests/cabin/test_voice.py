"""Voice prompts: the catalog covers every step in both languages, and espeak-ng (a real peer,
run offline) turns it into WAV files once - a second run is a no-op thanks to the manifest."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import pytest

from cabin import voice
from cabin.voice import CATALOG, MANIFEST, Prompt, generate, generate_async, main
from tests.peers import require

STEPS = (
    "welcome",
    "consent",
    "spo2-finger",
    "weight-stand",
    "bp-cuff",
    "temperature",
    "height",
    "hold-still",
    "result-ready",
    "call-doctor",
    "sos",
    "inactivity-warning",
)


@pytest.fixture
def espeak() -> None:
    require(voice.espeak_available(), "espeak-ng is not installed (apt-get install espeak-ng)")


def test_the_catalog_has_every_step_in_vietnamese_and_english() -> None:
    assert set(STEPS) <= set(CATALOG)
    assert CATALOG["spo2-finger"].vi == "Xin đặt ngón tay vào máy đo."
    assert CATALOG["weight-stand"].vi == "Xin đứng yên trên cân."
    for prompt_id, prompt in CATALOG.items():
        assert prompt.vi.strip(), prompt_id
        assert prompt.en.strip(), prompt_id
        assert prompt.vi != prompt.en, prompt_id
        assert all(c.isalnum() or c == "-" for c in prompt_id)


def test_a_language_without_a_voice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fr"):
        generate(tmp_path, voices=("fr",))
    with pytest.raises(ValueError, match="prompt id"):
        generate(tmp_path, prompts={"../escape": Prompt("a", "b")})


def _seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


@pytest.mark.usefixtures("espeak")
def test_generate_speaks_every_prompt_into_wav_files_once(tmp_path: Path) -> None:
    first = generate(tmp_path)
    assert len(first.written) == 2 * len(CATALOG)
    assert first.skipped == ()
    for language in ("vi", "en"):
        for prompt_id in CATALOG:
            path = tmp_path / language / f"{prompt_id}.wav"
            header = path.read_bytes()[:12]
            assert header[:4] == b"RIFF"
            assert header[8:12] == b"WAVE"
            assert _seconds(path) > 0.3, path
    manifest = json.loads((tmp_path / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["files"]["vi/weight-stand.wav"]["text"] == "Xin đứng yên trên cân."
    assert not list(tmp_path.rglob(".speaking-*"))

    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.wav")}
    second = generate(tmp_path)
    assert second.written == ()
    assert len(second.skipped) == 2 * len(CATALOG)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.wav")} == stamps


@pytest.mark.usefixtures("espeak")
def test_only_changed_or_missing_prompts_are_spoken_again(tmp_path: Path) -> None:
    prompts = {"hello": Prompt("Xin chào.", "Hello."), "bye": Prompt("Tạm biệt.", "Goodbye.")}
    generate(tmp_path, prompts=prompts)
    (tmp_path / "en" / "bye.wav").unlink()
    changed = {**prompts, "hello": Prompt("Xin chào ông bà.", "Hello.")}
    again = generate(tmp_path, prompts=changed)
    assert sorted(again.written) == ["en/bye.wav", "vi/hello.wav"]
    assert generate(tmp_path, prompts=changed, force=True).skipped == ()


@pytest.mark.usefixtures("espeak")
def test_generate_async_runs_off_the_event_loop(tmp_path: Path) -> None:
    async def scenario() -> int:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        done = await generate_async(tmp_path, voices=("vi",))
        ticker.cancel()
        assert len(done.written) == len(CATALOG)
        return ticks

    assert asyncio.run(scenario()) > 1


@pytest.mark.usefixtures("espeak")
def test_the_command_generates_into_the_given_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--dir", str(tmp_path), "--voices", "en"]) == 0
    assert (tmp_path / "en" / "welcome.wav").is_file()
    assert not (tmp_path / "vi").exists()
    assert "0 already up to date" in capsys.readouterr().out
    assert main(["generate", "--dir", str(tmp_path), "--voices", "en"]) == 0
    assert f"0 spoken, {len(CATALOG)} already up to date" in capsys.readouterr().out


def test_a_missing_espeak_is_reported_not_crashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert not voice.espeak_available()
    assert main(["generate", "--dir", str(tmp_path / "out")]) == 1
    assert "apt-get install espeak-ng" in capsys.readouterr().err


def test_default_directory_follows_the_cabin_data_directory() -> None:
    assert voice.default_directory({"CABIN_DATA_DIR": "/srv/cabin"}) == Path("/srv/cabin/voice")
    assert voice.default_directory({}) == Path("var/voice")
