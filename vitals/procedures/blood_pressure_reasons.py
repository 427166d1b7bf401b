"""Why a blood-pressure reading failed or is doubtful, and what the resident can do about it.

The BP module reports a failed cycle as an error code (SunTech Advantage codes, see
:data:`vitals.protocols.suntech.ERROR_CODES`); each becomes a :class:`Reason` that says what
happened and what to do, in Vietnamese and English: where the cuff goes (bare upper arm,
at heart level, snug), how to sit (still, arm resting, not talking), or - for a fault in the
module itself - to call the staff, with no retake offered.

| code | what the module says | reason | retake |
|---|---|---|---|
| 1 | weak or no pulse signal | ``bp-weak-pulse``: cuff placement | yes |
| 2 | erratic signal (motion) | ``bp-motion``: keep still, do not talk | yes |
| 3 | pressure out of range | ``bp-out-of-range``: rest, again, then staff | yes |
| 4, 88 | measurement / safety timeout | ``bp-too-long``: keep the arm still and relaxed | yes |
| 85 | pneumatic blockage | ``bp-hose-blocked``: straighten the tube | yes |
| 86 | aborted on request | ``bp-aborted`` | yes |
| 87 | air leak, loose cuff | ``bp-loose-cuff``: wrap snugly, check the tube | yes |
| 89 | over-pressure | ``bp-over-pressure``: relax the arm, do not squeeze | yes |
| 90, 91, 97, 99 | power, safety check, transducer, calibration | ``bp-device-fault``: staff | no |
| other | not documented | ``bp-error-<code>``: again, then staff | yes |
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Final

from vitals.measurement import Reason

WEAK_PULSE: Final = Reason(
    "bp-weak-pulse",
    "The cuff could not feel your pulse well enough. Wrap it on your bare upper arm, about "
    "2 cm above the elbow, at heart level and snug (one finger fits under it), then measure "
    "again.",
    "Vòng bít không bắt được mạch đủ rõ. Hãy quấn vòng bít trên bắp tay để trần, cách khuỷu "
    "tay khoảng 2 cm, ngang tầm tim và vừa khít (luồn vừa một ngón tay), rồi đo lại.",
)
MOTION: Final = Reason(
    "bp-motion",
    "Your arm moved or you talked while the cuff was measuring. Rest your arm on the table, "
    "keep still and do not talk, then measure again.",
    "Tay bạn đã cử động hoặc bạn nói chuyện trong lúc đo. Hãy đặt tay lên bàn, ngồi yên và "
    "không nói chuyện, rồi đo lại.",
)
OUT_OF_RANGE: Final = Reason(
    "bp-out-of-range",
    "The pressure was outside what the device can measure. Sit quietly for a minute and "
    "measure again; if it happens again, please ask the station staff for help.",
    "Huyết áp nằm ngoài khoảng máy đo được. Hãy ngồi nghỉ một phút rồi đo lại; nếu vẫn bị như "
    "vậy, vui lòng nhờ nhân viên tại trạm hỗ trợ.",
)
TOO_LONG: Final = Reason(
    "bp-too-long",
    "The measurement took too long, usually because the arm moved. Keep your arm still and "
    "relaxed on the table, then measure again.",
    "Phép đo kéo dài quá lâu, thường do tay bị cử động. Hãy để tay yên và thả lỏng trên bàn, "
    "rồi đo lại.",
)
HOSE_BLOCKED: Final = Reason(
    "bp-hose-blocked",
    "The cuff's air tube is bent or blocked. Make sure the tube is straight and nothing "
    "presses on it, then measure again.",
    "Ống dẫn khí của vòng bít bị gập hoặc bị tắc. Hãy để ống thẳng, không bị đè lên, rồi đo lại.",
)
ABORTED: Final = Reason(
    "bp-aborted",
    "The measurement was stopped before it finished. Please measure again.",
    "Phép đo đã bị dừng trước khi hoàn tất. Vui lòng đo lại.",
)
LOOSE_CUFF: Final = Reason(
    "bp-loose-cuff",
    "The cuff could not be pumped up: it is loose or its tube is not connected. Wrap the cuff "
    "snugly on your bare upper arm, check that the tube is plugged in, then measure again.",
    "Vòng bít không bơm lên được: vòng bít bị lỏng hoặc ống khí chưa được cắm. Hãy quấn vòng "
    "bít vừa khít trên bắp tay để trần, kiểm tra ống khí đã cắm chặt, rồi đo lại.",
)
OVER_PRESSURE: Final = Reason(
    "bp-over-pressure",
    "The cuff pressure rose too high and was let out for your safety. Relax your arm and do "
    "not bend or squeeze it, then measure again.",
    "Áp suất trong vòng bít tăng quá cao nên đã được xả ra để đảm bảo an toàn. Hãy thả lỏng "
    "tay, không gập hay siết tay, rồi đo lại.",
)
DEVICE_FAULT: Final = Reason(
    "bp-device-fault",
    "The blood pressure device has a fault and cannot measure now. Please ask the station "
    "staff for help.",
    "Máy đo huyết áp đang bị lỗi và không đo được lúc này. Vui lòng nhờ nhân viên tại trạm hỗ trợ.",
    retake=False,
)
NO_ANSWER: Final = Reason(
    "bp-no-answer",
    "The blood pressure device did not start. Please measure again; if it happens again, ask "
    "the station staff for help.",
    "Máy đo huyết áp không khởi động được. Vui lòng đo lại; nếu vẫn bị như vậy, hãy nhờ nhân "
    "viên tại trạm hỗ trợ.",
)
NO_RESULT: Final = Reason(
    "bp-no-result",
    "The device could not work out your blood pressure. Sit still with your arm resting at "
    "heart level, then measure again.",
    "Máy không xác định được huyết áp của bạn. Hãy ngồi yên, đặt tay ngang tầm tim, rồi đo lại.",
)
CYCLE_TIMEOUT: Final = Reason(
    "bp-cycle-timeout",
    "The measurement took too long and was stopped. Keep your arm still and measure again.",
    "Phép đo kéo dài quá lâu nên đã dừng lại. Hãy giữ tay yên và đo lại.",
)
INCOMPLETE: Final = Reason(
    "bp-incomplete",
    "Only one reading could be taken, and the standard is the average of two. Please measure "
    "again when you can, or let the doctor decide.",
    "Chỉ đo được một lần, trong khi chuẩn là lấy trung bình của hai lần đo. Vui lòng đo lại "
    "khi có thể, hoặc để bác sĩ quyết định.",
)
READINGS_VARY: Final = Reason(
    "bp-readings-vary",
    "Your readings differed by more than 5 mmHg and no third reading could be taken. Rest "
    "for a few minutes, then measure again.",
    "Các lần đo chênh nhau hơn 5 mmHg và chưa đo được lần thứ ba. Hãy nghỉ vài phút rồi đo lại.",
)

_BY_CODE: Final[Mapping[int, Reason]] = MappingProxyType(
    {
        1: WEAK_PULSE,
        2: MOTION,
        3: OUT_OF_RANGE,
        4: TOO_LONG,
        85: HOSE_BLOCKED,
        86: ABORTED,
        87: LOOSE_CUFF,
        88: TOO_LONG,
        89: OVER_PRESSURE,
        90: DEVICE_FAULT,
        91: DEVICE_FAULT,
        97: DEVICE_FAULT,
        99: DEVICE_FAULT,
    }
)


def for_error_code(code: int) -> Reason:
    """The reason for a module error code (an undocumented code asks for one retake)."""
    known = _BY_CODE.get(code)
    if known is not None:
        return known
    return Reason(
        f"bp-error-{code}",
        f"The blood pressure device reported error {code}. Please measure again; if it "
        "happens again, ask the station staff for help.",
        f"Máy đo huyết áp báo lỗi {code}. Vui lòng đo lại; nếu vẫn bị lỗi, hãy nhờ nhân viên "
        "tại trạm hỗ trợ.",
    )


def unconfirmed(difference: Decimal) -> Reason:
    """The module's result and the cuff signal's own envelope disagree by ``difference``."""
    return Reason(
        "bp-unconfirmed",
        f"The cuff signal does not confirm this result (it differs by {difference} mmHg). "
        "Rest for a minute, keep your arm still, then measure again.",
        f"Tín hiệu của vòng bít không khớp với kết quả này (chênh {difference} mmHg). Hãy "
        "nghỉ một phút, giữ tay yên, rồi đo lại.",
    )


def pulse_unconfirmed(difference: Decimal) -> Reason:
    """The module's pulse rate and the beats in the cuff signal disagree."""
    return Reason(
        "bp-pulse-unconfirmed",
        f"The pulse rate from the cuff does not match the beats it recorded (it differs by "
        f"{difference} per minute). Keep still and measure again.",
        f"Nhịp mạch do vòng bít báo không khớp với số nhịp đã ghi được (chênh {difference} "
        "lần mỗi phút). Hãy ngồi yên và đo lại.",
    )
