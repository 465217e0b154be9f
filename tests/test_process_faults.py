"""Exactly once through the faults a deployment sees more often than crashes: a worker cut off from PostgreSQL
past its lease in the middle of an upload, a worker paused (SIGSTOP) for twice its lease in the middle of an
upload, and PostgreSQL itself stopped for longer than the lease while images finish.

Each test runs an intake and two workers (real processes, tests/fleet.py) on a real PostgreSQL with a short lease,
sends a stream of requests from many users, injects its fault, and judges by what reached the fake Bot API and the
fake image API: exactly one photo per request, one generation per request (two only for a request whose first
generation was cut off before its image was kept in the database), no failure sentence, no status line left behind, every request
delivered within two leases of the fault's end, and one log line per kind of database error, no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest

from bot.keyboards import status_keyboard
from tests.fleet import BotProcess, Fleet
from tests.netfaults import Blackhole
from tests.postgres import Cluster, remove_cluster, start_cluster
from tests.test_processes import eventually, fetch

pytestmark = [pytest.mark.timeout(180), pytest.mark.long]

# Small values that still show each fault: a fault of two to two and a half leases, and requests still arriving
# while it lasts (the fault begins once the warm-up's photos are out). The lease stays 5 s: with 4 s (and 3 s) a
# worker starved of CPU on a loaded 2-core machine lost a lease with no fault at all (a second generation).
LEASE = 5.0
USERS = 20
REQUESTS = 30
RATE = 4.0  # requests a second
GENERATION = 1.5  # seconds the fake image API takes per image
WARMUP = 6  # photos delivered before the fault
PROMPT = re.compile(r"fault u\d+ n\d+")
CANCEL_PREFIX = status_keyboard("x", "en").inline_keyboard[0][0].callback_data.split(":")[0] + ":"


@dataclass
class Window:
    """When the fault began and ended (the fake APIs' clock: time.monotonic), and the requests whose image was kept
    in the database (where a takeover finds it) when it began."""

    start: float | None = None
    end: float | None = None
    kept: set[str] | None = None


async def _kept(database_url: str) -> set[str]:
    """The requests whose image is kept in the shared database now: a takeover delivers these, never makes them."""
    rows = await fetch(database_url, "SELECT j.prompt FROM originals o JOIN jobs j ON j.id = o.job_id")
    return {m.group(0) for (prompt,) in rows if (m := PROMPT.search(prompt))}


async def _stream(harness, people: list) -> dict[str, float]:
    """REQUESTS requests over USERS users at RATE a second; when each was sent."""
    sent: dict[str, float] = {}
    for k in range(REQUESTS):
        user, chat = people[k % USERS]
        prompt = f"fault u{k % USERS} n{k // USERS}"
        harness.send(chat, user, f"/imagine {prompt} --ar 1:1 --1k")
        sent[prompt] = time.monotonic()
        await asyncio.sleep(1 / RATE)
    return sent


async def _delivering(database_url: str, chat_id: int) -> int | None:
    """The pid of the process delivering a request of this chat now (its lease names host:pid:…)."""
    rows = await fetch(
        database_url, "SELECT worker FROM jobs WHERE chat_id = $1 AND settled = 1 AND variant = 1", chat_id
    )
    return int(rows[0][0].split(":")[1]) if rows and rows[0][0] else None


def _on_upload_by(
    tg, fleet: Fleet, workers: list[BotProcess], window: Window, act: Callable[[BotProcess], None]
) -> Callable:
    """A Bot API hook: at the first photo a worker uploads after the warm-up, `act` on that worker — the photo
    has reached Telegram, and the worker has not recorded it yet; then note what was kept (that worker writes no
    more)."""
    by_pid = {w.pid: w for w in workers}

    async def on_call(call) -> None:
        if call.method != "sendPhoto" or window.start is not None or len(tg.calls_of("sendPhoto")) <= WARMUP:
            return
        pid = await _delivering(fleet.database_url, int(call.params["chat_id"]))
        if pid in by_pid and window.start is None:
            window.start = time.monotonic()
            act(by_pid[pid])
            window.kept = await _kept(fleet.database_url)

    return on_call


async def _judge(tg, img, fleet: Fleet, sent: dict[str, float], window: Window) -> None:
    assert window.start is not None and window.end is not None, "the fault was never injected"
    assert window.kept is not None, "what was kept when the fault began was not noted"

    def captions() -> list[str]:
        return [m.group(0) for c in tg.calls_of("sendPhoto") if (m := PROMPT.search(c.params.get("caption", "")))]

    await tg.wait_for(
        lambda: set(captions()) >= set(sent),
        window.end - time.monotonic() + 2 * LEASE + 40,
        "a photo for every request",
    )

    await asyncio.sleep(2 * LEASE)  # a late writer or a reaper would act by now

    # exactly one photo per request
    photos = Counter(captions())
    assert {p: n for p, n in photos.items() if n != 1} == {}, "requests with more than one photo"
    assert set(photos) == set(sent)

    # one generation per request; two only where the first was cut off before its image was kept in the database:
    # made before the fault but not yet kept, it is on its worker's disk alone, which a takeover elsewhere cannot see
    generations: dict[str, list] = {}
    for r in img.requests:
        generations.setdefault(PROMPT.search(r.body["prompt"]).group(0), []).append(r)
    assert set(generations) == set(sent)
    for prompt, tries in generations.items():
        if len(tries) == 1:
            continue
        first = min(tries, key=lambda r: r.started)
        unkept = first.finished is None or first.finished > window.start or prompt not in window.kept
        cut = first.started < window.end and unkept
        assert len(tries) == 2 and cut, f"{prompt} generated {len(tries)} times"

    # no failure sentence, no status line left behind, every request delivered within two leases of the fault
    for call in tg.calls:
        if call.method in ("sendMessage", "editMessageText"):
            assert "⚠️" not in str(call.params.get("text")), call.params.get("text")
    for chat_id in {int(c.params["chat_id"]) for c in tg.calls_of("sendPhoto")}:
        stuck = [
            m.get("text")
            for m in tg.bot_messages(chat_id)
            if any(
                b.get("callback_data", "").startswith(CANCEL_PREFIX)
                for row in (m.get("reply_markup") or {}).get("inline_keyboard", [])
                for b in row
            )
        ]
        assert not stuck, stuck
    first_photo = {}
    for call in tg.calls_of("sendPhoto"):
        first_photo.setdefault(PROMPT.search(call.params["caption"]).group(0), call.at)
    late = {
        p: round(first_photo[p] - max(at, window.end), 1)
        for p, at in sent.items()
        if first_photo[p] - max(at, window.end) > 2 * LEASE + GENERATION + 3
    }
    assert not late, f"delivered later than two leases after the fault: {late}"

    # every job recorded as delivered (none written back by a late writer, holding a place in its user's caps)
    async def all_settled() -> bool:
        rows = await fetch(fleet.database_url, "SELECT count(*) FROM jobs WHERE status = 'done' AND settled = 2")
        return rows[0][0] == len(sent)

    await eventually(all_settled, 15, "every job done and settled")

    # one line per fault: no traceback, a few warnings
    for process in fleet.processes:
        text = process.log.read_text(errors="replace")
        assert "Traceback" not in text and "never retrieved" not in text, process.name
        warnings = [line for line in text.splitlines() if "WARNING" in line]
        assert len(warnings) <= 12, (process.name, warnings)


async def _run(
    tg,
    img,
    harness,
    fleet: Fleet,
    workers: list[BotProcess],
    fault: Callable[[], Awaitable[None]] | None,
    window: Window,
) -> None:
    img.delay = GENERATION
    people = [harness.person() for _ in range(USERS)]
    injector = asyncio.create_task(fault()) if fault else None
    try:
        sent = await _stream(harness, people)
        if injector is not None:
            await injector
        await tg.wait_for(lambda: window.end is not None and time.monotonic() > window.end, 60, "the fault to end")
        await _judge(tg, img, fleet, sent, window)
    finally:
        if injector is not None:
            injector.cancel()
            with contextlib.suppress(BaseException):
                await injector


@pytest.fixture
async def faults_fleet(tg, img, tmp_path, pg_cluster):
    fleet = Fleet(tg, img, tmp_path, pg_cluster.new_database(), JOB_LEASE_SECONDS=str(LEASE))
    try:
        yield fleet
    finally:
        await fleet.stop()
        print(fleet.logs())


async def test_a_worker_cut_off_from_postgresql_past_its_lease_mid_upload_sends_nothing_twice(
    faults_fleet, harness, tg, img
):
    fleet = faults_fleet
    await fleet.start(WORKER_CONCURRENCY="0")
    holes, workers = [], []
    for _ in range(2):
        hole = Blackhole(fleet.database_url)
        await hole.start()
        holes.append(hole)
        workers.append(await fleet.start("worker", DATABASE_URL=hole.url))
    hole_of = {w.pid: h for w, h in zip(workers, holes, strict=True)}
    window = Window()
    cut_for = 2.5 * LEASE

    def cut(worker: BotProcess) -> None:
        hole_of[worker.pid].cut()
        window.end = window.start + cut_for
        asyncio.get_running_loop().call_later(cut_for, hole_of[worker.pid].heal)

    tg.on_call = _on_upload_by(tg, fleet, workers, window, cut)
    try:
        await _run(tg, img, harness, fleet, workers, None, window)
    finally:
        tg.on_call = None
        await fleet.stop()  # before its forwarders go
        for hole in holes:
            await hole.stop()


async def test_a_worker_paused_for_twice_its_lease_mid_upload_sends_nothing_twice(faults_fleet, harness, tg, img):
    fleet = faults_fleet
    await fleet.start(WORKER_CONCURRENCY="0")
    workers = list(await asyncio.gather(fleet.start("worker"), fleet.start("worker")))
    window = Window()
    paused_for = 2 * LEASE

    def pause(worker: BotProcess) -> None:
        os.kill(worker.pid, signal.SIGSTOP)
        window.end = window.start + paused_for
        asyncio.get_running_loop().call_later(paused_for, os.kill, worker.pid, signal.SIGCONT)

    tg.on_call = _on_upload_by(tg, fleet, workers, window, pause)
    try:
        await _run(tg, img, harness, fleet, workers, None, window)
    finally:
        tg.on_call = None
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGCONT)


async def test_postgresql_stopped_longer_than_the_lease_while_images_finish_loses_nothing(tg, img, harness, tmp_path):
    cluster, why = start_cluster(given=False)  # of its own: stopping the session's would break other tests
    if cluster is None:
        if os.environ.get("IMAGINE_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here: {why}")
        pytest.skip(f"PostgreSQL: {why}")
    fleet = Fleet(tg, img, tmp_path, cluster.new_database(), JOB_LEASE_SECONDS=str(LEASE))
    window = Window()
    down_for = 2.5 * LEASE

    async def outage(server: Cluster = cluster) -> None:
        await tg.wait_for(
            lambda: len(tg.calls_of("sendPhoto")) >= WARMUP and img.inflight >= 2,
            60,
            "images being made after the warm-up",
        )
        window.kept = await _kept(fleet.database_url)
        window.start = time.monotonic()
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(down_for - (time.monotonic() - window.start))
        await asyncio.to_thread(server.start)
        window.end = time.monotonic()

    try:
        await fleet.start(WORKER_CONCURRENCY="0")
        workers = list(await asyncio.gather(fleet.start("worker"), fleet.start("worker")))
        await _run(tg, img, harness, fleet, workers, outage, window)
    finally:
        await fleet.stop()
        print(fleet.logs())
        remove_cluster(cluster)
