"""What the resident's screen says about the consultation: plain Vietnamese first (pure).

The doctor's disposition becomes one plain sentence in Vietnamese and English; queue
positions become "you are number 2, about 5 minutes". Kept apart from the service so the
wording can be reviewed (and tested) on its own.
"""

from __future__ import annotations

import math

from cabin.visit_machine import EMERGENCY_NUMBER

__all__ = ["ADVICE", "EMERGENCY_NUMBER", "advice", "waiting_sentence"]

ADVICE: dict[str, tuple[str, str]] = {
    "no-action": (
        "Bác sĩ cho biết hiện tại ông/bà không cần làm gì thêm.",
        "The doctor says you do not need to do anything more for now.",
    ),
    "see-gp": (
        "Bác sĩ khuyên ông/bà đi khám bác sĩ đa khoa trong vài ngày tới.",
        "The doctor advises you to see a general practitioner in the next few days.",
    ),
    "see-specialist": (
        "Bác sĩ khuyên ông/bà đi khám bác sĩ chuyên khoa.",
        "The doctor advises you to see a specialist.",
    ),
    "emergency-now": (
        "Bác sĩ khuyên ông/bà đến phòng cấp cứu NGAY. Gọi 115 nếu cần giúp đỡ.",
        "The doctor advises you to go to the emergency department NOW. Call 115 for help.",
    ),
}


def advice(disposition: str) -> tuple[str, str]:
    """(Vietnamese, English) sentences for a disposition code; unknown codes get a safe one."""
    return ADVICE.get(
        disposition,
        ("Xin đọc lời dặn của bác sĩ ở trên.", "Please read the doctor's note above."),
    )


def waiting_sentence(position: int | None, estimated_wait_s: float | None) -> tuple[str, str]:
    """Where the resident is in the queue, without inventing a time when none is known."""
    if position is None:
        return ("Đang kết nối với bác sĩ…", "Connecting you to a doctor…")
    if estimated_wait_s is None:
        return (
            f"Ông/bà là người thứ {position}. Hiện chưa có bác sĩ trực; xin vui lòng chờ.",
            f"You are number {position}. No doctor is free right now; please wait.",
        )
    minutes = max(1, math.ceil(estimated_wait_s / 60))
    return (
        f"Ông/bà là người thứ {position}. Thời gian chờ khoảng {minutes} phút.",
        f"You are number {position}. The wait is about {minutes} minutes.",
    )
