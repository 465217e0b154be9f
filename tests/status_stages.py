"""What a chat's status line said, in the order the fake Bot API received it, as stages that may only go up."""

from __future__ import annotations

import re

from tests.fakes.telegram import FakeBotAPI

QUEUED, WORKING, SENDING, RESULT = 1, 2, 3, 4
_WORKING = re.compile(r"^(🎨 (Generating|正在生成)|🖌 |⬆ (Upscaling|正在放大))")
_RESULTS = ("sendPhoto", "sendDocument", "sendMediaGroup")


def stage_of(method: str, text: str) -> int | None:
    if method in _RESULTS:
        return RESULT
    if method not in ("sendMessage", "editMessageText"):
        return None
    if text.startswith("⏳"):
        return QUEUED
    if _WORKING.match(text):
        return WORKING
    if text.startswith("📤"):
        return SENDING
    return None


def line_history(tg: FakeBotAPI, chat_id: int) -> list[tuple[int, str, float]]:
    """(stage, text, arrival) of every status text and result sent to one chat (one request per chat)."""
    seen = []
    for call in tg.calls:
        if str(call.params.get("chat_id")) != str(chat_id) or call.error is not None:
            continue
        text = call.params.get("text") or call.params.get("caption") or ""
        stage = stage_of(call.method, text)
        if stage is not None:
            seen.append((stage, text, call.at))
    return seen


def assert_forward(history: list[tuple[int, str, float]]) -> None:
    stages = [stage for stage, _, _ in history]
    assert stages == sorted(stages), [text.split("\n")[0] for _, text, _ in history]
    assert WORKING in stages and stages[-1] == RESULT, [text.split("\n")[0] for _, text, _ in history]
