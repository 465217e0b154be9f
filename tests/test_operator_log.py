"""The operator's log: one start line that says what the bot runs with, no Alembic chatter when nothing migrates,
and one line per job saying what happened to it, with only the fields it has."""

from __future__ import annotations

import asyncio
import io
import logging
import signal

from bot.logs import setup_logging
from tests.processes import bot_env, spawn


async def _start_and_stop(env: dict[str, str], cwd) -> str:
    """`python -m bot` until its ready line, then SIGTERM; its whole log."""
    proc = await spawn(env=env, cwd=cwd)
    lines: list[str] = []

    async def read() -> None:
        while line := await proc.stderr.readline():
            lines.append(line.decode())
            if "ready as @" in lines[-1]:
                proc.send_signal(signal.SIGTERM)

    try:
        await asyncio.wait_for(asyncio.gather(read(), proc.wait()), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
    return "".join(lines)


async def test_one_start_line_and_alembic_only_when_it_migrates(tmp_path, tg, img):
    env = bot_env(tg, img, DATA_DIR=str(tmp_path / "data"), MAX_CONCURRENT_GENERATIONS="3")
    first = await _start_and_stop(env, tmp_path)
    again = await _start_and_stop(env, tmp_path)
    for log in (first, again):
        assert "alembic" not in log and "Context impl" not in log and "Will assume" not in log, log
        (ready,) = [line for line in log.splitlines() if "ready as @" in line]
        database = tmp_path / "data" / "imagine-bot.sqlite3"
        assert ready.endswith(
            f"ready as @imagine_test_bot: polling, up to 3 jobs at once; image API "
            f"{img.base_url} model nano-banana-2; database SQLite {database}; "
            "inline mode off (INLINE_STORAGE_CHAT_ID)"
        ), ready
    assert "imagine-bot.sqlite3 created at revision" in first
    assert "migrated" not in again and "created" not in again


async def test_a_jobs_line_says_what_happened_to_it(start_bot, harness, tg, img):
    stream = io.StringIO()
    handler = setup_logging("INFO", [tg.token, img.api_key], stream)
    try:
        await start_bot()
        user, chat = harness.person()
        harness.send(chat, user, "/imagine fine --ar 1:1 --1k")
        await harness.result(chat["id"])
        img.size_next(1024, 1024)
        harness.send(chat, user, "/imagine wrong size --ar 16:9 --2k")
        await harness.result(chat["id"], count=2)
        img.fail_next(401)
        harness.send(chat, user, "/imagine refused --ar 1:1 --1k")
        await harness.status_says(chat["id"], "refused")
        img.delay_next(30)
        harness.send(chat, user, "/imagine stopped --ar 1:1 --1k")
        await img.wait_for(lambda: img.inflight == 1)
        harness.send(chat, user, "/cancel")
        await harness.status_says(chat["id"], "Cancelled")
        await tg.wait_for(
            lambda: stream.getvalue().count("bot.presentation.finisher: job") >= 4, 10, "four job lines"
        )  # other lines name a job too (the worker's warning of the refusal)
    finally:
        logging.getLogger().removeHandler(handler)
    jobs = [
        line.split(": ", 1)[1] for line in stream.getvalue().splitlines() if "bot.presentation.finisher: job" in line
    ]
    lines = [line.split(": ", 1)[1] for line in jobs]
    assert len(lines) == 4, jobs
    done, mismatch, failed, cancelled = lines
    assert done.startswith("done, photo, 1024×1024, ") and "upstream " in done, done
    assert mismatch.startswith("done with a size mismatch (asked 16:9 · 2K, got 1024×1024), photo, "), mismatch
    assert failed.startswith("failed (auth)") and "None" not in failed and "photo" not in failed, failed
    assert cancelled.startswith("cancelled") and "None" not in cancelled, cancelled
