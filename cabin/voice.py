"""Voice prompts for the resident's screen: a catalog of sentences, spoken offline by espeak-ng.

Every step of a visit has a prompt id with one Vietnamese and one English sentence
(:data:`CATALOG`).  :func:`generate` turns the catalog into WAV files at set-up time, with
espeak-ng on this machine (``espeak-ng -v vi -w out.wav "…"``) - never a network service::

    <directory>/vi/welcome.wav, <directory>/en/welcome.wav, …
    <directory>/manifest.json     {"files": {"vi/welcome.wav": {"sha256": …, "text": …}}, …}

The manifest records, per file, a hash of what was spoken (voice, speed, text): a second run
skips every file whose hash still matches, so only changed sentences are spoken again.
``generate`` blocks (it runs a subprocess per prompt): from async code call
:func:`generate_async`, which runs it in a worker thread.

``cabin voice generate [--dir DIR] [--voices vi,en] [--force]`` is :func:`main`.  espeak-ng
is Debian's ``espeak-ng`` package.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

Language = Literal["vi", "en"]

ESPEAK: Final = "espeak-ng"
APT_PACKAGE: Final = "espeak-ng"
MANIFEST: Final = "manifest.json"
MANIFEST_VERSION: Final = 1
ESPEAK_VOICES: Final[Mapping[str, str]] = {"vi": "vi", "en": "en"}
"""espeak-ng's voice per language (``vi-vn-x-south`` is its Southern Vietnamese variant)."""
WORDS_PER_MINUTE: Final = 140
"""A little slower than espeak-ng's 175: the residents are often older."""
TIMEOUT_S: Final = 30.0


@dataclass(frozen=True, slots=True)
class Prompt:
    """One thing the cabin says, in both languages."""

    vi: str
    en: str

    def text(self, language: str) -> str:
        if language == "vi":
            return self.vi
        if language == "en":
            return self.en
        raise ValueError(f"no {language!r} text: the prompts are in vi and en")


CATALOG: Final[Mapping[str, Prompt]] = {
    # arriving and consent
    "welcome": Prompt(
        "Xin chào. Chào mừng ông bà đến buồng khám sức khỏe.",
        "Hello. Welcome to the health check cabin.",
    ),
    "consent": Prompt(
        "Xin đọc nội dung đồng ý trên màn hình, rồi chọn có hoặc không cho từng mục.",
        "Please read the consent on the screen, then choose yes or no for each item.",
    ),
    "consent-declined": Prompt(
        "Ông bà đã không đồng ý đo. Buổi khám kết thúc tại đây.",
        "You did not agree to the measurements. The visit ends here.",
    ),
    "measuring-start": Prompt(
        "Chúng ta bắt đầu đo. Xin làm theo hướng dẫn trên màn hình.",
        "Let us start measuring. Please follow the instructions on the screen.",
    ),
    # each measurement
    "spo2-finger": Prompt(
        "Xin đặt ngón tay vào máy đo.",
        "Please put your finger into the clip.",
    ),
    "spo2-keep-finger": Prompt(
        "Xin giữ ngón tay trong máy đo cho đến khi có kết quả.",
        "Please keep your finger in the clip until the result appears.",
    ),
    "weight-stand": Prompt(
        "Xin đứng yên trên cân.",
        "Please stand still on the scale.",
    ),
    "weight-step-off": Prompt(
        "Xong rồi. Xin bước xuống khỏi cân.",
        "Done. Please step off the scale.",
    ),
    "bp-cuff": Prompt(
        "Xin quấn vòng bít vào cánh tay trái, ngang với tim, rồi đặt tay lên bàn.",
        "Please wrap the cuff around your left upper arm, level with your heart, "
        "and rest your arm on the table.",
    ),
    "bp-inflating": Prompt(
        "Vòng bít đang bơm hơi. Xin ngồi yên và không nói chuyện.",
        "The cuff is inflating. Please sit still and do not talk.",
    ),
    "bp-remove-cuff": Prompt(
        "Xong rồi. Xin tháo vòng bít ra.",
        "Done. Please take the cuff off.",
    ),
    "temperature": Prompt(
        "Xin đưa trán lại gần nhiệt kế, cách khoảng ba xăng ti mét.",
        "Please bring your forehead close to the thermometer, about three centimetres away.",
    ),
    "height": Prompt(
        "Xin đứng thẳng dưới thước đo chiều cao, lưng sát vào tường, mắt nhìn thẳng.",
        "Please stand straight under the height gauge, back against the wall, looking ahead.",
    ),
    "hold-still": Prompt(
        "Xin giữ yên.",
        "Please hold still.",
    ),
    "measurement-done": Prompt(
        "Đã đo xong.",
        "The measurement is done.",
    ),
    "retake": Prompt(
        "Chưa đo được. Xin đọc lý do trên màn hình và đo lại.",
        "The measurement did not work. Please read the reason on the screen and try again.",
    ),
    "step-skipped": Prompt(
        "Đã bỏ qua bước này.",
        "This step was skipped.",
    ),
    # results and the doctor
    "result-ready": Prompt(
        "Kết quả đã sẵn sàng. Xin xem trên màn hình.",
        "Your results are ready. Please look at the screen.",
    ),
    "result-urgent": Prompt(
        "Một kết quả cần được bác sĩ xem ngay. Xin bấm nút gọi bác sĩ.",
        "One result needs a doctor now. Please press the button to call a doctor.",
    ),
    "call-doctor": Prompt(
        "Nếu muốn nói chuyện với bác sĩ, xin bấm nút gọi bác sĩ.",
        "To talk to a doctor, please press the call a doctor button.",
    ),
    "doctor-connecting": Prompt(
        "Đang kết nối với bác sĩ. Xin vui lòng chờ.",
        "Connecting you to a doctor. Please wait.",
    ),
    "doctor-joined": Prompt(
        "Bác sĩ đã vào cuộc gọi.",
        "The doctor has joined the call.",
    ),
    "call-ended": Prompt(
        "Cuộc gọi đã kết thúc.",
        "The call has ended.",
    ),
    # safety and leaving
    "sos": Prompt(
        "Đã gửi tín hiệu khẩn cấp. Nhân viên sẽ đến ngay. Nếu nguy hiểm, xin gọi một một năm.",
        "An emergency alert has been sent. Staff are coming. In danger, call one one five.",
    ),
    "inactivity-warning": Prompt(
        "Ông bà còn ở đây không? Xin chạm vào màn hình để tiếp tục.",
        "Are you still there? Please touch the screen to continue.",
    ),
    "session-ended": Prompt(
        "Buổi khám đã kết thúc. Thông tin của ông bà đã được xóa khỏi buồng khám.",
        "The visit has ended. Your information has been removed from the cabin.",
    ),
    "goodbye": Prompt(
        "Cảm ơn ông bà. Xin nhớ lấy lại thẻ căn cước.",
        "Thank you. Please remember to take your ID card.",
    ),
}
"""Prompt id → sentences.  The ids are the file names; the UI plays ``/<lang>/<id>.wav``."""


class VoiceUnavailable(RuntimeError):
    """espeak-ng is not installed (``apt-get install espeak-ng``), or it failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Generated:
    """What one :func:`generate` run did (paths relative to its directory)."""

    written: tuple[str, ...]
    skipped: tuple[str, ...]


def espeak_available() -> bool:
    """Whether ``espeak-ng`` is on the PATH."""
    return shutil.which(ESPEAK) is not None


def relative_path(prompt_id: str, language: str) -> str:
    """Where a prompt's WAV file lives under the generated directory."""
    return f"{language}/{prompt_id}.wav"


def spoken_hash(text: str, *, voice: str, speed: int = WORDS_PER_MINUTE) -> str:
    """SHA-256 over everything that changes the audio (not espeak-ng's own version)."""
    material = json.dumps({"voice": voice, "speed": speed, "text": text}, ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def generate(
    directory: Path,
    *,
    voices: Sequence[str] = ("vi", "en"),
    prompts: Mapping[str, Prompt] = CATALOG,
    force: bool = False,
) -> Generated:
    """Speak every prompt in every language of ``voices`` into ``directory`` (blocking).

    Idempotent: a file that exists and whose manifest hash matches is skipped (``force``
    speaks everything again).  Each WAV is written to a temporary name and renamed, and the
    manifest is rewritten after each file, so an interrupted run leaves nothing half-done
    that a later run would trust.  Raises :class:`VoiceUnavailable` when espeak-ng is
    missing or fails, ``ValueError`` for a language without an espeak-ng voice.
    """
    for language in voices:
        if language not in ESPEAK_VOICES:
            raise ValueError(f"no espeak-ng voice configured for {language!r}")
    for prompt_id in prompts:
        if not prompt_id or not all(c.isalnum() or c == "-" for c in prompt_id):
            raise ValueError(f"a prompt id is letters, digits and '-': {prompt_id!r}")
    directory.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(directory / MANIFEST)
    written: list[str] = []
    skipped: list[str] = []
    for language in voices:
        voice = ESPEAK_VOICES[language]
        (directory / language).mkdir(exist_ok=True)
        for prompt_id, prompt in prompts.items():
            name = relative_path(prompt_id, language)
            text = prompt.text(language)
            digest = spoken_hash(text, voice=voice)
            entry = manifest.get(name)
            target = directory / name
            if (
                not force
                and target.is_file()
                and entry is not None
                and entry.get("sha256") == digest
            ):
                skipped.append(name)
                continue
            _speak(text, voice=voice, target=target)
            manifest[name] = {"sha256": digest, "voice": voice, "text": text}
            _write_manifest(directory / MANIFEST, manifest)
            written.append(name)
    return Generated(written=tuple(written), skipped=tuple(skipped))


async def generate_async(
    directory: Path,
    *,
    voices: Sequence[str] = ("vi", "en"),
    prompts: Mapping[str, Prompt] = CATALOG,
    force: bool = False,
) -> Generated:
    """:func:`generate` in a worker thread, so the event loop keeps running."""
    return await asyncio.to_thread(generate, directory, voices=voices, prompts=prompts, force=force)


def _speak(text: str, *, voice: str, target: Path) -> None:
    executable = shutil.which(ESPEAK)
    if executable is None:
        raise VoiceUnavailable(f"{ESPEAK} is not installed (apt-get install {APT_PACKAGE})")
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".speaking-", suffix=".wav")
    os.close(handle)
    try:
        # the text is one argument after "--": never parsed as an option, never by a shell
        completed = subprocess.run(
            [executable, "-v", voice, "-s", str(WORDS_PER_MINUTE), "-w", temporary, "--", text],
            capture_output=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0 or Path(temporary).stat().st_size <= 44:
            stderr = completed.stderr.decode("utf-8", "replace").strip()
            raise VoiceUnavailable(
                f"{ESPEAK} -v {voice} failed ({completed.returncode}): {stderr or 'no audio'}"
            )
        os.replace(temporary, target)
    except subprocess.TimeoutExpired as timed_out:
        raise VoiceUnavailable(f"{ESPEAK} took longer than {TIMEOUT_S:.0f} s") from timed_out
    finally:
        Path(temporary).unlink(missing_ok=True)


def _read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """The manifest's files, or nothing if it is missing, unreadable or another version."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict) or document.get("version") != MANIFEST_VERSION:
        return {}
    files = document.get("files")
    if not isinstance(files, dict):
        return {}
    return {
        str(name): {str(k): str(v) for k, v in entry.items()}
        for name, entry in files.items()
        if isinstance(entry, dict)
    }


def _write_manifest(path: Path, files: Mapping[str, Mapping[str, str]]) -> None:
    document = {"version": MANIFEST_VERSION, "engine": ESPEAK, "files": dict(sorted(files.items()))}
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(
        json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )
    os.replace(temporary, path)


def default_directory(environ: Mapping[str, str] | None = None) -> Path:
    """``$CABIN_DATA_DIR/voice``, or ``var/voice`` (the cabin's default data directory)."""
    env = os.environ if environ is None else environ
    return Path(env.get("CABIN_DATA_DIR") or "var") / "voice"


def main(argv: Sequence[str] | None = None) -> int:
    """``cabin voice generate|list …``: 0 on success, 1 when espeak-ng is missing or fails."""
    parser = argparse.ArgumentParser(
        prog="cabin voice", description="Voice prompts spoken offline by espeak-ng."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="speak every prompt into WAV files")
    make.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="where the files go (default: $CABIN_DATA_DIR/voice, else var/voice)",
    )
    make.add_argument(
        "--voices", default="vi,en", help="comma-separated languages (default: vi,en)"
    )
    make.add_argument("--force", action="store_true", help="speak every prompt again")
    commands.add_parser("list", help="print the prompt ids and their sentences")
    arguments = parser.parse_args(argv)
    if arguments.command == "list":
        for prompt_id, prompt in CATALOG.items():
            print(f"{prompt_id}\n  vi: {prompt.vi}\n  en: {prompt.en}")
        return 0
    directory: Path = arguments.dir or default_directory()
    voices = tuple(v.strip() for v in arguments.voices.split(",") if v.strip())
    try:
        done = generate(directory, voices=voices, force=arguments.force)
    except ValueError as error:
        parser.error(str(error))
    except VoiceUnavailable as error:
        print(f"cabin voice: {error}", file=sys.stderr)
        return 1
    print(f"{directory}: {len(done.written)} spoken, {len(done.skipped)} already up to date")
    return 0
