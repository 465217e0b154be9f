"""Throughput benchmark: the real bot (`bot.app.run_bot`) against the fake Bot API and the fake image API.

    uv run python bench/throughput.py              # full run (about 1-2 minutes)
    uv run python bench/throughput.py --quick      # N = 1 and 10 only
    uv run python bench/throughput.py --markdown   # the table as Markdown

Every workload runs in its own subprocess (`--one '<json spec>'`, which prints one JSON line), so peak RSS and
state never leak from one workload to the next. Inside it, the two fakes run in a separate thread with their
own asyncio loop; the bot runs alone in the main thread's loop, next to a 10 ms sleep probe that measures the
loop's lag. All times are `time.monotonic()` (the fakes stamp `Call.at`, `Recorded.started/finished` with it).

Per job: overhead = (fake Bot API received the job's final upload) − (the /imagine update was enqueued in the
fake) − (time the fake image API spent on the request, `Recorded.finished − started`). It includes the
getUpdates round trip, the status messages, downloading the image from the fake's URL, checks, the preview
and both uploads.

One workload by hand, with a cProfile of the bot's thread (top functions to stderr):

    uv run python bench/throughput.py --one '{"n": 20, "cap": 20, "delay": 0, "size": "4K", "texture": true}' \\
        --profile /tmp/bench.prof
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import heapq
import json
import logging
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_TIMEOUT = 120.0
BENCH_USER_BASE = 500_000
TAP_USER_BASE = 700_000  # the people tapping keyboards during a crowd, none of them in it
TAP_CHATS = 20  # keyboards open in that many chats; each tap is on the next chat
TAP_EVERY = 0.5  # seconds between taps
TAP_RATIOS = ("16:9", "9:16", "4:3", "3:4", "3:2", "2:3")  # tapped in turn: every tap changes the keyboard
PROMPT = re.compile(r"bench prompt (\d+)")

TARGETS = {
    "wall_200": 2.5,  # s, 200 users × 2 s upstream, high cap
    "overhead_1k": 30.0,  # ms, p50
    "overhead_4k": 250.0,  # ms, p50
    "lag_4k": 50.0,  # ms, p99
    "rss_4k": 300.0,  # MB, 20 concurrent 4K jobs
    "crowd_ratio": 1.05,  # wall / floor, 200 users at the default settings (cap 8, 30 Telegram messages/s)
    "cpu_1k_200": 15.0,  # ms of bot CPU per 1K image at N=200
    "cpu_growth": 1.3,  # bot CPU per image at N=200 / at N=10
    "tap_p99": 0.3,  # s, a tap on a keyboard during the crowd → its redraw, p99
}
CROWD = "crowd · 2 s · 1K · defaults"
SLOW_4K = "0 s · 4K worst, one-chunk ~50 MB PNG, uploads at 10 MB/s"
SLOW_UPLOAD = 10_000_000  # bytes a second: a 50 MB original takes Telegram 5 s


# ====================================================================================== the workload (child)


def _slim_fakes() -> tuple[type, type]:
    """The fakes, minus the memory they would hold on the bot's behalf (they share its process).

    The fake Bot API keeps every upload and the fake image API a fresh copy of each PNG it served; with 20
    4K jobs that is ~1 GB that is not the bot's. These subclasses count uploaded documents instead of keeping
    them, drop stored files over 64 KB, and stream each served PNG from the one cached base image.
    """
    from aiohttp import hdrs, web

    from tests.fakes import imageapi, telegram
    from tests.fakes.imagemodels import GEMINI

    class Blank(bytes):
        """An upload that was counted, not kept: empty bytes whose len() is the size received."""

        def __new__(cls, size: int) -> Blank:
            obj = super().__new__(cls)
            obj.size = size
            return obj

        def __len__(self) -> int:
            return self.size

    class SlimCalls(list):
        def append(self, call: Any) -> None:
            call.upload_bytes = sum(len(f[1]) for f in call.files.values())
            call.files = {k: (f[0], b"", f[2]) for k, f in call.files.items()}
            super().append(call)

    class SlimBotAPI(telegram.FakeBotAPI):
        def __init__(self) -> None:
            super().__init__()
            self.calls = SlimCalls()

        def _store_file(self, data: bytes, folder: str, **kwargs: Any) -> Any:
            return super()._store_file(data if len(data) <= 64 * 1024 else b"", folder, **kwargs)

        async def _parse(self, request: web.Request) -> tuple[dict, dict]:
            if request.content_type != "multipart/form-data":
                return await super()._parse(request)
            params: dict[str, Any] = {k: telegram._decode(k, v) for k, v in request.query.items()}
            files: dict[str, tuple[str, bytes, str]] = {}
            reader = await request.multipart()
            pace = telegram.UploadPace(self.upload_bytes_per_second)  # as slowly as the workload says
            while (part := await reader.next()) is not None:
                if part.filename is None:
                    params[part.name] = telegram._decode(part.name, await part.text())
                    continue
                ctype = part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream")
                if part.name == "document":  # counted as it streams in, never held
                    size = 0
                    async for chunk in pace.chunks(part):
                        size += len(chunk)
                    files[part.name] = (part.filename, Blank(size), ctype)
                else:  # photos are decoded and checked, as the fake always does
                    data = bytearray()
                    async for chunk in pace.chunks(part):
                        data += chunk
                    files[part.name] = (part.filename, bytes(data), ctype)
            return params, files

    class SlimImageAPI(imageapi.FakeImageAPI):
        """A plain answer (one PNG, nothing injected) names a lazy file, or streams its base64, both from the one
        cached image: the same bytes the fake serves (stamped with the request id), never a copy per request."""

        def _plain(self, plan: Any) -> bool:
            return (
                plan.fmt == "png"
                and plan.model != GEMINI
                and len(plan.sizes) == 1
                and self.b64_style is None
                and not (self._fails or self._streams or self._junk or self._images or self._sizes)
            )

        async def _answer(self, rec: Any, request: web.Request, delay: float, plan: Any) -> web.StreamResponse:
            if not self._plain(plan):
                return await super()._answer(rec, request, delay, plan)
            if delay > 0:
                await asyncio.sleep(delay)
            if (self.response_format or plan.answer) == "b64_json":
                return await self._b64_stream(rec, request, plan.sizes[0])
            answer = self._success(plan, rec, "url", [(b"", "image/png")])  # the model's shape, a placeholder file
            name = self._file_name(rec.request_id, 0, plan.fmt)
            self._files[name] = (("lazy", plan.sizes[0], rec.request_id), "image/png")
            return web.json_response(answer)

        async def _b64_stream(self, rec: Any, request: web.Request, size: tuple[int, int]) -> web.StreamResponse:
            """The b64_json answer written as it is encoded: twenty 68 MB answers must not sit in the fakes."""
            base = await self._base_image(*size, "png")
            head = imageapi._with_text_chunk(base[:33], "fake-request-id", rec.request_id)
            view = memoryview(base)[33:]
            step = 3 << 18  # whole 3-byte groups, so the pieces join into one base64 text
            first = len(head) + (-len(head) % 3)
            response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "application/json"})
            await response.prepare(request)
            await response.write(b'{"data": [{"b64_json": "' + base64.b64encode(head + view[: first - len(head)]))
            view = view[first - len(head) :]
            for offset in range(0, len(view), step):
                await response.write(base64.b64encode(view[offset : offset + step]))
            await response.write(b'"}]}')
            await response.write_eof()
            return response

        async def _file(self, request: web.Request) -> web.StreamResponse:
            found = self._files.get(request.match_info["name"])
            if found is None or not (isinstance(found[0], tuple) and found[0][0] == "lazy"):
                return await super()._file(request)
            _, (width, height), rid = found[0]
            base = await self._base_image(width, height, "png")
            # The same bytes as _with_text_chunk(base, "fake-request-id", rid), without the copy.
            head = imageapi._with_text_chunk(base[:33], "fake-request-id", rid)
            view = memoryview(base)[33:]
            response = web.StreamResponse(headers={hdrs.CONTENT_TYPE: "image/png"})
            response.content_length = len(head) + len(view)
            await response.prepare(request)
            await response.write(head)
            for offset in range(0, len(view), 1 << 20):
                await response.write(view[offset : offset + (1 << 20)])
            await response.write_eof()
            return response

    return SlimBotAPI, SlimImageAPI


class FakeThread:
    """A thread running its own event loop, for the fakes; everything that touches them goes through it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._main, name="fakes", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        """From a thread without a running loop: block until done."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def arun(self, coro: Any) -> Any:
        """From the bot's loop: await the coroutine running on the fakes' loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    async def call(self, fn: Any, *args: Any) -> Any:
        """A plain function on the fakes' loop (they mutate state and wake asyncio events)."""

        async def wrapper() -> Any:
            return fn(*args)

        return await self.arun(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()


def _status_kb(field: str) -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _reset_peak_rss() -> bool:
    """Linux: set VmHWM back to the current RSS, so the peak is that of the workload alone."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _thread_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


class _CountWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"{record.name}: {record.getMessage()}"[:300])


def _make_settings(tg: Any, img: Any, data_dir: Path, cap: int, rate: float = 0) -> Any:
    from pydantic import ValidationError

    from bot.config import Settings

    values: dict[str, Any] = {
        "telegram_bot_token": tg.token,
        "image_api_key": img.api_key,
        "image_api_base_url": img.base_url,
        "telegram_api_base_url": tg.base_url,
        "telegram_file_base_url": tg.base_file_url,
        "data_dir": data_dir,
        "max_concurrent_generations": cap,
        "image_api_retry_backoff": 0.05,
        "shutdown_grace_seconds": 5,
        "log_level": "WARNING",
        # Newer settings (ignored by a Settings that does not know them yet):
        "telegram_max_messages_per_second": rate,  # 0: off (the fake Bot API has no flood limit)
        "user_max_running": 2,
        "user_max_waiting": 5,
        "database_url": f"sqlite:///{data_dir / 'bench.sqlite3'}",
    }
    try:
        return Settings(_env_file=None, **values)
    except ValidationError:  # a bound on a setting that is still changing: run with its default
        for name in ("user_max_running", "user_max_waiting"):
            values.pop(name)
        return Settings(_env_file=None, **values)


async def _lag_probe(samples: list[tuple[float, float]]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(0.01)
        samples.append((time.monotonic(), loop.time() - before - 0.01))


async def _drive(spec: dict, fakes: FakeThread, tg: Any, img: Any, settings: Any, expect: str) -> dict:
    from bot.app import run_bot

    n, size, timeout = spec["n"], spec["size"], spec.get("timeout", DEFAULT_TIMEOUT)
    lags: list[tuple[float, float]] = []
    probe = asyncio.create_task(_lag_probe(lags))
    stop = asyncio.Event()
    bot_task = asyncio.create_task(run_bot(settings, stop, poll_timeout=1), name="bot")
    result: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 30
        while not await fakes.call(lambda: len(tg.calls_of("getUpdates"))):
            if bot_task.done() or time.monotonic() > deadline:
                bot_task.result()
                raise RuntimeError("the bot did not start polling within 30 s")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let start-up settle; the next long poll is waiting in the fake

        def prepare() -> tuple[list[tuple[dict, dict]], int]:
            people = []
            for i in range(n):
                user = tg.user(BENCH_USER_BASE + i, f"Bench{i}")
                people.append((user, tg.private_chat(user)))
            return people, len(tg.calls)

        people, cursor = await fakes.call(prepare)
        tappers = await _open_keyboards(fakes, tg) if spec.get("taps") else []
        if tappers:
            cursor = await fakes.call(lambda: len(tg.calls))
        rss_start = _status_kb("VmRSS")
        peak_reset = _reset_peak_rss()
        cpu_start = _process_cpu()
        fake_cpu_start = await fakes.call(_thread_cpu)

        def send_all() -> list[float]:
            enqueued = []
            for i, (user, chat) in enumerate(people):
                tg.send_text(chat, user, f"/imagine bench prompt {i} --ar 1:1 --size {size}")
                enqueued.append(time.monotonic())
            return enqueued

        async def wait_done(deadline: float) -> tuple[dict[int, float], dict[int, int]]:
            """On the fakes' loop: final upload time per chat, and upload bytes."""
            final: dict[int, float] = {}
            uploaded: dict[int, int] = {}
            wanted = {BENCH_USER_BASE + i for i in range(n)}
            pos = cursor
            while len(final) < n and time.monotonic() < deadline:
                calls = tg.calls
                while pos < len(calls):
                    call = calls[pos]
                    pos += 1
                    if call.method in ("sendPhoto", "sendDocument"):
                        chat = int(call.params.get("chat_id", 0))
                        if chat in wanted:
                            uploaded[chat] = uploaded.get(chat, 0) + getattr(call, "upload_bytes", 0)
                            if call.method == expect:
                                final[chat] = call.at
                await asyncio.sleep(0.005)
            return final, uploaded

        enqueued = await fakes.call(send_all)
        tapping = threading.Event()
        taps = asyncio.run_coroutine_threadsafe(_tap_during(tg, tappers, tapping), fakes.loop) if tappers else None
        final, uploaded = await fakes.arun(wait_done(enqueued[0] + timeout))
        tapping.set()
        tap_stats = await fakes.call(_tap_latencies, tg, taps.result(30), enqueued[0]) if taps else None
        t_end = max(final.values()) if final else time.monotonic()
        peak_kb = _status_kb("VmHWM") if peak_reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        cpu_total = _process_cpu() - cpu_start
        fake_cpu = await fakes.call(_thread_cpu) - fake_cpu_start

        def upstream() -> dict[int, float]:
            spent: dict[int, float] = {}
            for rec in img.requests:
                match = PROMPT.fullmatch(str(rec.body.get("prompt", "")).strip())
                if match and rec.finished is not None:
                    i = int(match.group(1))
                    spent[i] = spent.get(i, 0.0) + rec.finished - rec.started
            return spent

        spent = await fakes.call(upstream)

        def calls_by_method() -> dict[str, float]:
            """Bot API calls to the benchmark's chats during the workload, per image, by method."""
            counts: dict[str, int] = {}
            for call in tg.calls[cursor:]:
                with contextlib.suppress(TypeError, ValueError):
                    if BENCH_USER_BASE <= int(call.params.get("chat_id")) < BENCH_USER_BASE + n:
                        counts[call.method] = counts.get(call.method, 0) + 1
            return {method: count / n for method, count in sorted(counts.items(), key=lambda kv: -kv[1])}

        per_method = await fakes.call(calls_by_method)
        anatomy = await fakes.call(_anatomy, img, spec["cap"], enqueued[0], t_end) if n > spec["cap"] else None

        def timeline(i: int) -> list[tuple[str, float]]:
            """What reached the fakes for job i, in ms after its /imagine was enqueued (the job's anatomy)."""
            chat, t0 = BENCH_USER_BASE + i, enqueued[i]
            events = [
                (c.method, c.at)
                for c in tg.calls[cursor:]
                if c.method != "getUpdates" and str(c.params.get("chat_id")) == str(chat)
            ]
            for rec in img.requests:
                if str(rec.body.get("prompt", "")).strip() == f"bench prompt {i}" and rec.finished is not None:
                    events += [("image API start", rec.started), ("image API answered", rec.finished)]
            return [(name, round((at - t0) * 1000, 1)) for name, at in sorted(events, key=lambda e: e[1])]

        overheads = [
            (final[BENCH_USER_BASE + i] - enqueued[i] - spent.get(i, 0.0)) * 1000
            for i in range(n)
            if BENCH_USER_BASE + i in final
        ]
        by_overhead = sorted((o, i) for i, o in zip([i for i in range(n) if BENCH_USER_BASE + i in final], overheads))
        median_job = await fakes.call(timeline, by_overhead[len(by_overhead) // 2][1]) if by_overhead else []
        window = [lag * 1000 for at, lag in lags if enqueued[0] <= at <= t_end]
        summary = "" if len(final) == n else await fakes.call(tg._summary, 12)
        result = {
            "done": len(final),
            "wall_s": t_end - enqueued[0],
            "send_spread_ms": (enqueued[-1] - enqueued[0]) * 1000,
            "overhead_ms": {
                "p50": percentile(overheads, 50),
                "p95": percentile(overheads, 95),
                "max": max(overheads, default=None),
            },
            "upstream_s": {"p50": percentile(list(spent.values()), 50), "max": max(spent.values(), default=None)},
            "lag_ms": {
                "p50": percentile(window, 50),
                "p99": percentile(window, 99),
                "max": max(window, default=None),
                "samples": len(window),
            },
            "rss_mb": {
                "start": (rss_start or 0) / 1024,
                "peak": (peak_kb or 0) / 1024,
                "peak_is_workload_only": peak_reset,
            },
            "cpu_s": {"process": cpu_total, "fakes_thread": fake_cpu},
            "bot_cpu_ms_per_image": (cpu_total - fake_cpu) * 1000 / max(1, len(final)),
            "calls_per_image": per_method,
            "upload_mb_per_job": (sum(uploaded.values()) / max(1, len(uploaded))) / 1e6,
            "image_requests": len(spent),
            "median_job_timeline_ms": median_job,
            "missing_calls": summary,
            "taps": tap_stats,
            "anatomy": anatomy,
        }
    finally:
        stop.set()
        try:
            await asyncio.wait_for(bot_task, 60)
        except Exception as exc:
            result.setdefault("error", f"bot stop: {type(exc).__name__}: {exc}")
        probe.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await probe
    return result


async def _open_keyboards(fakes: FakeThread, tg: Any) -> list[tuple[dict, dict]]:
    """TAP_CHATS people who each sent `/imagine` without flags, and the keyboard the bot answered with."""
    people = await fakes.call(lambda: [(tg.user(TAP_USER_BASE + i, f"Tapper{i}"),) for i in range(TAP_CHATS)])
    people = [(user, await fakes.call(tg.private_chat, user)) for (user,) in people]
    for i, (user, chat) in enumerate(people):
        await fakes.call(tg.send_text, chat, user, f"/imagine tapped keyboard {i}")

    def keyboards() -> list[dict] | None:
        found = []
        for _, chat in people:
            board = next((m for m in tg.bot_messages(chat["id"]) if "Generate" in str(m.get("reply_markup"))), None)
            if board is None:
                return None
            found.append(board)
        return found

    deadline = time.monotonic() + 30
    while (boards := await fakes.call(keyboards)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the tappers' keyboards did not arrive within 30 s")
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # their budget spent before the workload is theirs, not the crowd's
    return [(user, board) for (user, _), board in zip(people, boards, strict=True)]


async def _tap_during(
    tg: Any, tappers: list[tuple[dict, dict]], done: threading.Event
) -> list[tuple[str, int, int, float]]:
    """On the fakes' loop: a tap every TAP_EVERY s, each on the next chat's keyboard, each changing its ratio,
    until `done`. Returns (callback query id, chat, message, when) per tap."""
    taps = []
    n = 0
    while not done.is_set():
        user, board = tappers[n % len(tappers)]
        ratio = TAP_RATIOS[(n // len(tappers)) % len(TAP_RATIOS)]
        current = tg.message(board["chat"]["id"], board["message_id"])
        button = next(
            b for row in current["reply_markup"]["inline_keyboard"] for b in row if b["text"] in (ratio, f"✓ {ratio}")
        )
        taps.append(
            (
                tg.press(current, button["callback_data"], user),
                board["chat"]["id"],
                board["message_id"],
                time.monotonic(),
            )
        )
        n += 1
        await asyncio.sleep(TAP_EVERY)
    return taps


def _tap_latencies(tg: Any, taps: list[tuple[str, int, int, float]], start: float) -> dict:
    """Per tap: → its answerCallbackQuery, → the first edit of the tapped message after it (seconds); and the
    slowest three redraws, with when their tap came (seconds after the crowd's commands)."""
    answers = {c.params.get("callback_query_id"): c.at for c in tg.calls if c.method == "answerCallbackQuery"}
    edits: dict[tuple[int, int], list[float]] = {}
    for c in tg.calls:
        if c.method in ("editMessageReplyMarkup", "editMessageText"):
            with contextlib.suppress(TypeError, ValueError):
                edits.setdefault((int(c.params["chat_id"]), int(c.params["message_id"])), []).append(c.at)
    redraw, answer, lost, slowest = [], [], 0, []
    for query, chat, message, at in taps:
        later = [t for t in edits.get((chat, message), []) if t >= at]
        if query not in answers or not later:
            lost += 1
            continue
        answer.append(answers[query] - at)
        redraw.append(min(later) - at)
        slowest.append((round(min(later) - at, 3), round(at - start, 2)))
    stats = {"taps": len(taps), "unanswered": lost, "slowest": sorted(slowest, reverse=True)[:3]}
    for name, values in (("redraw_s", redraw), ("answer_s", answer)):
        stats[name] = {"p50": percentile(values, 50), "p99": percentile(values, 99), "max": max(values, default=None)}
    return stats


def _anatomy(img: Any, cap: int, t0: float, t_end: float) -> dict | None:
    """Where a capped row's wall goes: until the first upstream call, the upstream stretch, after the last answer;
    and each slot hand-off: a call's start − the end of the earliest call still counted in flight (the slot it
    took), so the sum over `cap` is the wall the engine lost between calls."""
    calls = sorted(
        (r.started, r.finished)
        for r in img.requests
        if r.finished is not None and PROMPT.fullmatch(str(r.body.get("prompt", "")).strip())
    )
    if not calls:
        return None
    ends: list[float] = []
    gaps = []
    for start, end in calls:
        if len(ends) >= cap:
            gaps.append(max(0.0, start - heapq.heappop(ends)))
        heapq.heappush(ends, end)
    last = max(end for _, end in calls)
    return {
        "first_call_s": calls[0][0] - t0,
        "upstream_s": last - calls[0][0],
        "tail_s": t_end - last,
        "handoff_ms": {
            "p50": (percentile(gaps, 50) or 0) * 1000,
            "p95": (percentile(gaps, 95) or 0) * 1000,
            "max": max(gaps, default=0) * 1000,
        },
        "handoffs": len(gaps),
        "lost_s": sum(gaps) / cap,
    }


def _texture_png(width: int, height: int, noise: bool = False) -> bytes:
    """The fake's photo-like PNG of this size (or its incompressible noise PNG, the worst case), cached on disk
    across runs."""
    cache = Path(tempfile.gettempdir()) / "imagine-bench" / f"{'noise' if noise else 'texture'}-{width}x{height}.png"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        code = (
            "import sys; from pathlib import Path; from tests.fakes.imageapi import _make_image; "
            f"Path(sys.argv[1]).write_bytes(_make_image({width}, {height}, {noise}, {not noise}, 'png'))"
        )
        partial = cache.with_suffix(f".{os.getpid()}.part")
        subprocess.run([sys.executable, "-c", code, str(partial)], check=True, cwd=ROOT)
        partial.replace(cache)
    return cache.read_bytes()


def run_one(spec: dict, profile: str | None = None) -> dict:
    from tests.fakes import imageapi
    from tests.fakes.imageapi import SIZES

    bot_api_cls, image_api_cls = _slim_fakes()
    warnings = _CountWarnings()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().addHandler(warnings)
    fakes = FakeThread()

    async def boot() -> tuple[Any, Any, int]:
        tg, img = bot_api_cls(), image_api_cls()
        await tg.start()
        await img.start()
        img.delay = float(spec["delay"])
        img.texture = bool(spec.get("texture"))
        img.noise = bool(spec.get("noise"))
        img.response_format = spec.get("format")
        tg.upload_bytes_per_second = spec.get("upload_bps")  # None: uploads taken as fast as they come
        png = await img._base_image(*SIZES[("1:1", spec["size"])], "png")  # made once now, not during the run
        return tg, img, len(png)

    if spec.get("texture") or spec.get("noise"):  # made in a throwaway process: Pillow's work must not stay here
        noise = bool(spec.get("noise"))
        png = _texture_png(*SIZES[("1:1", spec["size"])], noise)
        if spec.get("one_idat"):  # as many encoders write a PNG: all its pixels in one chunk
            png = imageapi.single_idat(png)
        imageapi._IMAGE_CACHE[(*SIZES[("1:1", spec["size"])], noise, not noise, "png")] = png
    tg, img, png_bytes = fakes.run(boot(), 120)
    from bot.delivery import fits_photo

    width, height = SIZES[("1:1", spec["size"])]
    expect = "sendPhoto" if fits_photo(png_bytes, width, height) else "sendDocument"
    profiler = None
    try:
        with tempfile.TemporaryDirectory(prefix="imagine-bench-") as tmp:
            settings = _make_settings(tg, img, Path(tmp) / "data", spec["cap"], spec.get("rate", 0))
            if profile:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            result = asyncio.run(_drive(spec, fakes, tg, img, settings, expect))
            if profiler:
                profiler.disable()
    finally:

        async def shutdown() -> None:
            await tg.stop()
            await img.stop()

        with contextlib.suppress(Exception):
            fakes.run(shutdown(), 30)
        fakes.close()
    if profiler and profile:
        import pstats

        profiler.dump_stats(profile)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    result.update(
        spec=spec, png_mb=png_bytes / 1e6, delivered_as=expect, warnings=warnings.count, first_warnings=warnings.first
    )
    return result


# ======================================================================================== the table (parent)


def workloads(quick: bool, timeout: float) -> list[dict]:
    ns = [1, 10] if quick else [1, 10, 50, 200]
    small = [1, 10] if quick else [1, 20]
    rows: list[dict] = []
    for n in ns:
        rows.append({"name": "2 s · 1K · parallel", "n": n, "cap": 256, "delay": 2.0, "size": "1K"})
    for n in ns:
        rows.append({"name": "2 s · 1K · sequential", "n": n, "cap": 1, "delay": 2.0, "size": "1K", "skip": n > 10})
    for n in small:
        rows.append({"name": "0 s · 1K", "n": n, "cap": max(n, 1), "delay": 0.0, "size": "1K"})
    for n in small:
        rows.append(
            {"name": "0 s · 4K (~21 MB PNG)", "n": n, "cap": max(n, 1), "delay": 0.0, "size": "4K", "texture": True}
        )
    rows.append(
        {
            "name": "0 s · 4K worst (~50 MB PNG as b64_json)",
            "n": small[-1],
            "cap": small[-1],
            "delay": 0.0,
            "size": "4K",
            "noise": True,
            "format": "b64_json",
        }
    )
    for answer in ("b64_json", "url"):  # as an independent Bot API emulator measured it: uploads take seconds
        rows.append(
            {
                "name": f"{SLOW_4K} · {answer}",
                "n": small[-1],
                "cap": small[-1],
                "delay": 0.0,
                "size": "4K",
                "noise": True,
                "one_idat": True,
                "format": answer,
                "upload_bps": SLOW_UPLOAD,
                "timeout": max(timeout, 300.0),
            }
        )
    if not quick:  # as deployed: 8 generations at once, 30 Telegram messages a second; someone taps meanwhile
        rows.append(
            {
                "name": CROWD,
                "n": 200,
                "cap": 8,
                "delay": 2.0,
                "size": "1K",
                "rate": 30,
                "taps": True,
                "timeout": max(timeout, 200.0),
            }
        )
    for row in rows:
        row.setdefault("timeout", timeout)
    return rows


def run_child(spec: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(spec)]
    started = time.monotonic()
    load = [_loadavg()]
    try:
        # as deployed (Dockerfile): glibc with two malloc arenas, or Pillow's worker threads fragment memory, and
        # big blocks always mapped, or each 4K preview's freed bitmap stays in the heap
        env = {
            **os.environ,
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
            "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_", "1048576"),
        }
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=spec["timeout"] + 120, cwd=ROOT, env=env)
    except subprocess.TimeoutExpired:
        return {"spec": spec, "error": "subprocess timed out"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"spec": spec, "error": f"exit {proc.returncode}\n{tail}"}
    result = json.loads(lines[-1])
    result["child_s"] = time.monotonic() - started
    result["load"] = [*load, _loadavg()]
    return result


def _loadavg() -> float | None:
    """The machine's 1-minute load average (Linux), beside every run: the machine is shared."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return float(Path("/proc/loadavg").read_text().split()[0])
    return None


def median_run(runs: list[dict]) -> dict:
    """Of several runs of one workload, the one with the median bot CPU per image, carrying the range of all."""
    ok = sorted((r for r in runs if "error" not in r), key=lambda r: r["bot_cpu_ms_per_image"])
    if not ok:
        return runs[0]
    chosen = dict(ok[(len(ok) - 1) // 2])
    loads = [x for r in ok for x in r.get("load", []) if x is not None]
    if loads:
        chosen["load_range"] = (min(loads), max(loads))
    if len(ok) > 1:
        chosen["bot_cpu_range"] = (ok[0]["bot_cpu_ms_per_image"], ok[-1]["bot_cpu_ms_per_image"])
        walls = sorted(r["wall_s"] for r in ok)
        chosen["wall_range"] = (walls[0], walls[-1])
        chosen["wall_median"] = walls[(len(walls) - 1) // 2]
        chosen["rss_range"] = (min(r["rss_mb"]["peak"] for r in ok), max(r["rss_mb"]["peak"] for r in ok))
        taps = [r["taps"] for r in ok if r.get("taps")]
        if taps:  # the median of each tap number over the runs, and its range
            chosen["taps"] = dict(chosen["taps"])
            for kind in ("redraw_s", "answer_s"):
                summary = {}
                for stat in ("p50", "p99", "max"):
                    values = sorted(t[kind][stat] for t in taps if t[kind][stat] is not None)
                    if values:
                        summary[stat] = values[(len(values) - 1) // 2]
                        summary[stat + "_range"] = (values[0], values[-1])
                chosen["taps"][kind] = summary
    return chosen


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def floor(spec: dict) -> float:
    """The least wall time the cap allows: N generations of `delay` seconds, `cap` at a time."""
    return math.ceil(spec["n"] / spec["cap"]) * spec["delay"]


def table_rows(results: list[dict]) -> list[list[str]]:
    rows = []
    by_key = {(r["spec"]["name"], r["spec"]["n"]): r for r in results}
    for r in results:
        spec = r["spec"]
        head = [spec["name"], str(spec["n"]), str(spec["cap"])]
        if spec.get("skip"):
            ref = by_key.get((spec["name"], 10))
            est = ""
            if ref and "wall_s" in ref and ref.get("done") == 10:
                est = f", ≈{ref['wall_s'] / 10 * spec['n']:.0f} s est."
            rows.append([*head, f"skipped (≥{spec['n'] * 2:.0f} s{est})", "-", "-", "-", "-", "-", "-", "-"])
            continue
        if "error" in r:
            rows.append([*head, "ERROR: " + r["error"].splitlines()[0], "-", "-", "-", "-", "-", "-", "-"])
            continue
        wall_s = r.get("wall_median", r["wall_s"])
        wall = f"{wall_s:.2f} s"
        if r.get("wall_range"):
            wall += f" ({r['wall_range'][0]:.2f}–{r['wall_range'][1]:.2f})"
        if r["done"] < spec["n"]:
            wall = f"TIMEOUT {r['done']}/{spec['n']} done"
        ratio = f"{wall_s / (spec['n'] * spec['delay']):.3f}" if spec["delay"] else "-"
        if spec["name"] == CROWD:
            ratio = f"{wall_s / floor(spec):.2f} × floor"
            if r.get("wall_range"):
                ratio += f" ({r['wall_range'][0] / floor(spec):.2f}–{r['wall_range'][1] / floor(spec):.2f})"
        rss = f"{r['rss_mb']['peak']:.0f} ({r['rss_mb']['start']:.0f})" + (
            "" if r["rss_mb"]["peak_is_workload_only"] else "*"
        )
        if r.get("rss_range"):
            rss += f" {r['rss_range'][0]:.0f}–{r['rss_range'][1]:.0f}"
        cpu = f"{r['cpu_s']['process']:.1f} / {r['cpu_s']['fakes_thread']:.1f}"
        per_image = _ms(r.get("bot_cpu_ms_per_image"))
        if r.get("bot_cpu_range"):
            low, high = r["bot_cpu_range"]
            per_image += f" ({_ms(low)}–{_ms(high)})"
        rows.append(
            [
                *head,
                wall,
                ratio,
                _ms(r["overhead_ms"]["p50"]),
                _ms(r["overhead_ms"]["p95"]),
                _ms(r["lag_ms"]["p99"]),
                rss,
                cpu,
                per_image,
            ]
        )
    return rows


HEADERS = [
    "workload (upstream delay · size · mode)",
    "N",
    "cap",
    "wall (all N)",
    "wall / N×delay",
    "overhead p50 ms",
    "p95 ms",
    "loop lag p99 ms",
    "peak RSS MB (start)",
    "CPU s all / fakes",
    "bot CPU ms / image",
]


TAP_HEADERS = [
    "taps during the crowd (one every 0.5 s, each on another chat)",
    "taps",
    "tap → redraw p50 s",
    "p99 s",
    "max s",
    "tap → answer p50 s",
    "p99 s",
    "max s",
]


def tap_rows(results: list[dict]) -> list[list[str]]:
    """The tap latencies of the rows that tapped: medians over the runs, (low–high) of all runs."""

    def cell(summary: dict, stat: str) -> str:
        value = summary.get(stat)
        if value is None:
            return "-"
        low, high = summary.get(stat + "_range", (value, value))
        return f"{value:.2f}" + (f" ({low:.2f}–{high:.2f})" if high > low else "")

    rows = []
    for r in results:
        taps = r.get("taps")
        if not taps:
            continue
        rows.append(
            [
                f"{r['spec']['name']}, N={r['spec']['n']}",
                f"{taps['taps']} ({taps['unanswered']} lost)",
                *(cell(taps["redraw_s"], s) for s in ("p50", "p99", "max")),
                *(cell(taps["answer_s"], s) for s in ("p50", "p99", "max")),
            ]
        )
    return rows


def render(rows: list[list[str]], markdown: bool, headers: list[str] = HEADERS) -> str:
    if markdown:
        lines = [
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---" if i == 0 else "--:" for i in range(len(headers))) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *map(fmt, rows)])


def targets(results: list[dict]) -> list[str]:
    def find(name: str, n: int | None = None) -> dict | None:
        rows = [
            r
            for r in results
            if r["spec"]["name"].startswith(name)
            and "error" not in r
            and not r["spec"].get("skip")
            and (n is None or r["spec"]["n"] == n)
        ]
        return max(rows, key=lambda r: r["spec"]["n"]) if rows else None

    out = []

    def check(label: str, row: dict | None, value: float | None, limit: float, unit: str, want_n: int) -> None:
        if row is None or value is None:
            out.append(f"  [ n/a ] {label}: not measured")
            return
        ok = value <= limit and row["done"] == row["spec"]["n"]
        note = "" if row["spec"]["n"] == want_n else f"  (measured at N={row['spec']['n']}, target is for N={want_n})"
        digits = 2 if unit in ("s", "×") else 0
        out.append(f"  [{'MET ' if ok else 'MISS'}] {label}: {value:.{digits}f} {unit} (≤ {limit:g} {unit}){note}")

    par = find("2 s · 1K · parallel")
    check("200 users × 2 s, cap 256: wall", par, par and par["wall_s"], TARGETS["wall_200"], "s", 200)
    k1, k4, worst = find("0 s · 1K"), find("0 s · 4K ("), find("0 s · 4K worst (")
    check("overhead p50 at 1K", k1, k1 and k1["overhead_ms"]["p50"], TARGETS["overhead_1k"], "ms", 20)
    check("overhead p50 at 4K", k4, k4 and k4["overhead_ms"]["p50"], TARGETS["overhead_4k"], "ms", 20)
    check("loop lag p99 during the 4K workload", k4, k4 and k4["lag_ms"]["p99"], TARGETS["lag_4k"], "ms", 20)
    check("peak RSS with 20 concurrent 4K jobs", k4, k4 and k4["rss_mb"]["peak"], TARGETS["rss_4k"], "MB", 20)
    crowd = find(CROWD)
    check(
        "crowd of 200 at the default settings: wall / floor (median)",
        crowd,
        crowd and crowd.get("wall_median", crowd["wall_s"]) / floor(crowd["spec"]),
        TARGETS["crowd_ratio"],
        "×",
        200,
    )
    par10 = find("2 s · 1K · parallel", 10)
    cpu200 = par and par.get("bot_cpu_ms_per_image")
    check("bot CPU per 1K image, 200 at once", par, cpu200, TARGETS["cpu_1k_200"], "ms", 200)
    growth = cpu200 / par10["bot_cpu_ms_per_image"] if cpu200 and par10 and par10.get("bot_cpu_ms_per_image") else None
    check("bot CPU per image, N=200 / N=10", par, growth, TARGETS["cpu_growth"], "×", 200)
    check(
        "peak RSS with 20 worst-case 4K jobs (b64_json)",
        worst,
        worst and worst["rss_mb"]["peak"],
        TARGETS["rss_4k"],
        "MB",
        20,
    )
    for answer in ("b64_json", "url"):
        slow = find(f"{SLOW_4K} · {answer}")
        check(
            f"peak RSS, 20 one-chunk 4K PNGs as {answer}, uploads 5 s each",
            slow,
            slow and slow["rss_mb"]["peak"],
            TARGETS["rss_4k"],
            "MB",
            20,
        )
    tapped = crowd and crowd.get("taps")
    check(
        "a tap during the crowd → its redraw, p99",
        crowd,
        tapped and tapped["redraw_s"].get("p99"),
        TARGETS["tap_p99"],
        "s",
        200,
    )
    return out


def notes(results: list[dict]) -> list[str]:
    ok = [r for r in results if "error" not in r and not r["spec"].get("skip")]
    k4 = next((r for r in ok if r["spec"].get("texture")), None)
    lines = [
        "Notes:",
        "  - TELEGRAM_MAX_MESSAGES_PER_SECOND=0 (the overall limit off) except in the crowd row (30/s, as",
        "    deployed): the fake Bot API has no flood limit, and with it on, every row would measure the limiter.",
        "    Per-group limits do not apply (every user is a private chat).",
        "  - overhead = final upload received by the fake − /imagine update enqueued − time the fake image API",
        "    spent on the request; it includes the getUpdates round trip (the fake's long poll wakes at once), status",
        "    messages, the download from the fake's URL, Pillow checks, preview and uploads.",
        "  - peak RSS = VmHWM of the whole process (bot + fakes), reset when the commands are sent; (start) is the",
        "    RSS at that moment, with the fakes' cached PNG. The fakes count uploads and stream the served PNG",
        "    instead of keeping copies, so the growth over (start) is the bot's. * = ru_maxrss since process start.",
        "  - CPU s: whole process during the workload / the fakes' thread alone (both share the GIL and the",
        f"    machine's {os.cpu_count()} CPU(s) with the bot, so big-image rows include the fakes' work).",
        "  - loop lag: a 10 ms sleep probe in the bot's loop, p99 over the workload.",
    ]
    if k4:
        lines.append(
            f"  - 4K: the fake serves a {k4['png_mb']:.1f} MB PNG; the bot delivered it via {k4['delivered_as']}"
            f" ({k4['upload_mb_per_job']:.1f} MB uploaded per job)."
        )
    if any(r["spec"].get("skip") for r in results):
        lines.append("  - sequential N > 10 skipped: cap 1 runs the jobs one after another (N × 2 s); the estimate")
        lines.append("    scales the N=10 row.")
    for r in ok:
        if r["spec"]["n"] >= 20 and r.get("median_job_timeline_ms"):
            steps = " · ".join(f"{name} {at:.0f}" for name, at in r["median_job_timeline_ms"])
            lines.append(f"  - median job of '{r['spec']['name']}' N={r['spec']['n']}, ms after its /imagine: {steps}")
    for r in ok:
        if r["spec"]["name"] == CROWD and r.get("calls_per_image"):
            calls = " · ".join(f"{m} {c:.2f}" for m, c in r["calls_per_image"].items())
            lines.append(
                f"  - {CROWD}: floor {math.ceil(r['spec']['n'] / r['spec']['cap'])} × "
                f"{r['spec']['delay']:g} s = {floor(r['spec']):.0f} s (cap {r['spec']['cap']}); "
                f"TELEGRAM_MAX_MESSAGES_PER_SECOND={r['spec']['rate']:g}; Bot API calls per image: {calls}"
            )
    for r in ok:
        a = r.get("anatomy")
        if a:
            h = a["handoff_ms"]
            lines.append(
                f"  - {r['spec']['name']} N={r['spec']['n']}: first upstream call {a['first_call_s']:.2f} s after "
                f"the commands; upstream stretch {a['upstream_s']:.2f} s; last image delivered "
                f"{a['tail_s']:.2f} s after its answer; slot hand-offs (a call's start − the end of the "
                f"call whose slot it took) p50 {h['p50']:.0f} ms, p95 {h['p95']:.0f} ms, max {h['max']:.0f} ms "
                f"over {a['handoffs']}: {a['lost_s']:.2f} s of wall lost"
            )
    lines.append("  - bot CPU ms / image: (process CPU − the fakes' thread CPU) / images delivered, from getrusage;")
    lines.append("    with --repeat K, the run with the median of K is shown (its wall: the median of K), and")
    lines.append("    (low–high) of all K.")
    loads = [
        f"{r['spec']['name']} N={r['spec']['n']} {r['load_range'][0]:.1f}–{r['load_range'][1]:.1f}"
        for r in ok
        if r.get("load_range")
    ]
    if loads:
        lines.append(f"  - 1-minute load average before/after the runs ({os.cpu_count()} CPUs): " + "; ".join(loads))
    warn = [r for r in ok if r.get("warnings")]
    for r in warn:
        lines.append(
            f"  - {r['spec']['name']} N={r['spec']['n']}: {r['warnings']} warning(s) logged, e.g. "
            f"{(r['first_warnings'] or ['?'])[0]}"
        )
    for r in ok:
        if r["done"] < r["spec"]["n"] and r.get("missing_calls"):
            lines.append(f"  - {r['spec']['name']} N={r['spec']['n']} last calls: {r['missing_calls'][:400]}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 1 and 10 only (smoke run)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per workload")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="K",
        help="run each workload K times; the run with the median bot CPU per image is shown, "
        "with the range of all K (the machine is shared and noisy)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write every result to FILE")
    parser.add_argument(
        "--rows", metavar="TEXT", action="append", help="only the workloads whose name contains TEXT (repeatable)"
    )
    parser.add_argument("--one", metavar="SPEC", help="(internal) run one workload, print JSON")
    parser.add_argument("--profile", metavar="FILE", help="with --one: cProfile the bot's thread into FILE")
    args = parser.parse_args()

    if args.one:
        spec = {
            "name": "manual",
            "timeout": args.timeout,
            "cap": 20,
            "delay": 0.0,
            "size": "1K",
            **json.loads(args.one),
        }
        print(json.dumps(run_one(spec, args.profile)), flush=True)
        return 0

    started = time.monotonic()
    results = []
    for spec in workloads(args.quick, args.timeout):
        if args.rows and not any(text in spec["name"] for text in args.rows):
            continue
        if spec.get("skip"):
            results.append({"spec": spec})
            continue
        print(f"… {spec['name']}, N={spec['n']}, cap {spec['cap']}", file=sys.stderr, flush=True)
        results.append(median_run([run_child(spec) for _ in range(max(1, args.repeat))]))
    print(render(table_rows(results), args.markdown))
    if taps := tap_rows(results):
        print()
        print(render(taps, args.markdown, TAP_HEADERS))
    print()
    print("Targets:")
    print("\n".join(targets(results)))
    print()
    print("\n".join(notes(results)))
    errors = [r for r in results if "error" in r]
    for r in errors:
        print(f"\n{r['spec']['name']} N={r['spec']['n']} failed:\n{r['error']}")
    print(f"\nTotal: {time.monotonic() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
