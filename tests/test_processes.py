"""Several real processes on one PostgreSQL: an intake (`python -m bot`) and workers (`python -m bot worker`)
against the fake Bot API and the fake image API of this process (tests/fleet.py starts them).

What only several processes can show: each image made and delivered once, the caps and round-robin held over all
of them, a killed worker's job finished by another, a cancel crossing processes, two webhook replicas keeping a
chat's taps in order, an original served after its worker is gone, and readiness following the database.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
from collections import Counter, defaultdict

import asyncpg
import httpx
import pytest
from aiohttp import ClientSession, web

from tests.fleet import BotProcess, Fleet, free_port
from tests.postgres import remove_cluster, start_cluster
from tests.status_stages import WORKING, assert_forward, line_history
from tests.test_service import sample

pytestmark = pytest.mark.long

SECRET = "fleet-Secret_123"
PROMPT = re.compile(r"u(\d+) n(\d+)")


@pytest.fixture
async def fleet(tg, img, tmp_path, pg_cluster):
    processes = Fleet(tg, img, tmp_path, pg_cluster.new_database())
    try:
        yield processes
    finally:
        await processes.stop()
        print(processes.logs())  # shown when the test fails


async def fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    """Read the shared database as an operator would (psql), to see which process holds what."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def metric(process: BotProcess, name: str, **labels: str) -> float:
    return sample((await process.get("/metrics")).text, name, **labels)


async def eventually(probe, timeout: float, what: str):
    """Await `probe()` every 0.1 s until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := await probe()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)
    return value


def photos(tg) -> list:
    return tg.calls_of("sendPhoto")


async def test_an_intake_and_two_workers_make_each_image_once_within_the_caps(fleet, harness, tg, img):
    cap, per_user = 6, 2
    fleet.env.update(MAX_CONCURRENT_GENERATIONS=str(cap), USER_MAX_RUNNING=str(per_user), USER_MAX_WAITING="15")
    img.delay = 0.3
    intake = await fleet.start(WORKER_CONCURRENCY="0")
    people = [harness.person() for _ in range(20)]
    wanted = {i: 13 if i < 4 else 3 for i in range(20)}  # 4 heavy users, 16 light ones: 100 jobs
    for i, (user, chat) in enumerate(people):  # user by user: the queue must interleave them, not the order sent
        for n in range(1, wanted[i] + 1):
            harness.send(chat, user, f"/imagine u{i} n{n} --ar 1:1 --1k")

    async def all_queued() -> bool:
        return (await fetch(fleet.database_url, "SELECT count(*) FROM jobs WHERE status = 'queued'"))[0][0] == 100

    await eventually(all_queued, 30, "100 queued jobs")  # the intake runs none
    assert not img.requests
    workers = await asyncio.gather(*(fleet.start("worker", WORKER_CONCURRENCY="4") for _ in range(2)))
    await tg.wait_for(lambda: len(photos(tg)) >= 100, 60, "100 photos")

    async def all_done() -> bool:
        rows = await fetch(fleet.database_url, "SELECT count(*) FROM jobs WHERE status = 'done' AND settled = 2")
        return rows[0][0] == 100

    await eventually(all_done, 20, "every job done and settled")

    # each image generated once and delivered once, to its own chat
    asked = [PROMPT.search(r.body["prompt"]).groups() for r in img.requests]
    assert len(asked) == 100 and len(set(asked)) == 100
    for i, (_, chat) in enumerate(people):
        sent = [
            PROMPT.search(c.params["caption"]).groups() for c in photos(tg) if int(c.params["chat_id"]) == chat["id"]
        ]
        assert sorted(sent, key=lambda p: int(p[1])) == [(str(i), str(n)) for n in range(1, wanted[i] + 1)]
    assert len(photos(tg)) == 100

    # the caps hold over both workers (together they would run 8 at once), and both did work
    assert img.max_inflight == cap
    in_flight: Counter[str] = Counter()
    most: Counter[str] = Counter()
    events = sorted(
        [(r.started, 1, r) for r in img.requests] + [(r.finished, 0, r) for r in img.requests],
        key=lambda e: (e[0], e[1]),
    )
    for _, starts, r in events:
        user = PROMPT.search(r.body["prompt"]).group(1)
        in_flight[user] += 1 if starts else -1
        most[user] = max(most[user], in_flight[user])
    assert max(most.values()) == per_user  # reached by the heavy users at the end, never passed

    async def counted() -> list[float] | None:  # each process counts a job just after recording it
        done = [await metric(w, "imagine_jobs_finished_total", outcome="done") for w in workers]
        return done if sum(done) == 100 else None

    done = await eventually(counted, 10, "100 jobs counted done by the workers")
    assert all(done), done
    assert await metric(intake, "imagine_jobs_finished_total", outcome="done") == 0

    # round-robin across users: everyone's first image before anyone's fifth, upstream and in the chat
    def order(entries: list[tuple[str, str]]) -> tuple[int, int]:
        firsts = [k for k, (_, n) in enumerate(entries) if n == "1"]
        fifths = [k for k, (_, n) in enumerate(entries) if n == "5"]
        return max(firsts), min(fifths)

    started = [PROMPT.search(r.body["prompt"]).groups() for r in sorted(img.requests, key=lambda r: r.started)]
    last_first, first_fifth = order(started)
    assert last_first < first_fifth
    last_first, first_fifth = order([PROMPT.search(c.params["caption"]).groups() for c in photos(tg)])
    assert last_first < first_fifth


async def _running_in(fleet: Fleet, prompt: str) -> BotProcess:
    """The process whose worker runs the job of `prompt` (its lease names host:pid:…)."""

    async def holder() -> str | None:
        rows = await fetch(
            fleet.database_url, "SELECT worker FROM jobs WHERE prompt = $1 AND status = 'running'", prompt
        )
        return rows[0][0] if rows and rows[0][0] else None

    pid = int((await eventually(holder, 15, "the job to be claimed")).split(":")[1])
    return next(p for p in fleet.processes if p.pid == pid)


async def test_a_worker_killed_mid_job_is_replaced_by_the_other_once(fleet, harness, tg, img):
    fleet.env.update(JOB_LEASE_SECONDS="2")
    await fleet.start(WORKER_CONCURRENCY="0")
    await asyncio.gather(fleet.start("worker"), fleet.start("worker"))
    user, chat = harness.person()
    img.delay_next(60)  # the first attempt hangs until its worker dies
    prompt = "killed mid-job"
    harness.send(chat, user, f"/imagine {prompt} --ar 1:1 --1k")
    # the request read whole (in flight from its headers on): killed before its body, it would have no prompt
    await img.wait_for(lambda: img.inflight == 1 and img.requests[0].body.get("prompt") == prompt, 20, "the request")
    victim = await _running_in(fleet, prompt)
    assert victim.name.startswith("worker")
    await victim.kill()

    await harness.result(chat["id"], timeout=30)

    async def settled() -> list[asyncpg.Record]:
        return await fetch(
            fleet.database_url, "SELECT attempts, worker FROM jobs WHERE status = 'done' AND settled = 2"
        )

    (row,) = await eventually(settled, 20, "the job to be done and settled")
    assert row["attempts"] == 2
    tries = [r for r in img.requests if r.body["prompt"] == prompt]
    assert len(tries) == 2 and tries[0].aborted and tries[1].status == 200
    assert len(harness.results(chat["id"])) == 1
    assert not any("interrupted" in text for text in harness.texts(chat["id"]))


async def test_variants_on_two_workers_keep_one_status_line(fleet, harness, tg, img):
    """The intake sends the line, the workers only edit it, and nothing edits it once the album is there."""
    await fleet.start(WORKER_CONCURRENCY="0")
    await asyncio.gather(fleet.start("worker", WORKER_CONCURRENCY="2"), fleet.start("worker", WORKER_CONCURRENCY="2"))
    img.delay = 1.5
    user, chat = harness.person()
    harness.send(chat, user, "/imagine four foxes on two workers --ar 1:1 --1k --n 4")
    await tg.wait_for(lambda: tg.calls_of("sendMediaGroup"), 30, "the album")
    await asyncio.sleep(6)  # a line still shown somewhere would have been edited by now (every 5 s)
    to_chat = [c for c in tg.calls if str(c.params.get("chat_id")) == str(chat["id"])]
    lines = [c for c in to_chat if c.method == "sendMessage" and "four foxes" in c.params.get("text", "")]
    assert len(lines) == 1, [c.params.get("text") for c in lines]
    album_at = next(i for i, c in enumerate(to_chat) if c.method == "sendMediaGroup")
    assert not [
        c for c in to_chat[album_at:] if c.method == "editMessageText" and "Generating" in c.params.get("text", "")
    ]


async def test_cancel_at_the_intake_stops_the_job_in_a_worker(fleet, harness, tg, img):
    await fleet.start(WORKER_CONCURRENCY="0")
    await fleet.start("worker")
    user, chat = harness.person()
    img.delay_next(60)
    harness.send(chat, user, "/imagine cancel me --ar 1:1 --1k")
    await img.wait_for(lambda: img.inflight == 1, 20, "the generation to start")

    def status_line() -> dict | None:
        return next(
            (
                m
                for m in tg.bot_messages(chat["id"])
                if "Cancel" in str(m.get("reply_markup")) and "cancel me" in (m.get("text") or "")
            ),
            None,
        )

    line = await tg.wait_for(status_line, 10, "the status line with ✖ Cancel")
    await harness.press(line, "✖ Cancel", user)  # only the intake takes updates
    # ~1 s by design; the bound only tells that from the 60 s the request would take
    await img.wait_for(lambda: img.requests[0].aborted, 10, "the upstream request to be aborted")
    await harness.status_says(chat["id"], "Cancelled")

    async def cancelled() -> bool:
        rows = await fetch(fleet.database_url, "SELECT status FROM jobs")
        return [r[0] for r in rows] == ["cancelled"]

    await eventually(cancelled, 10, "the job to be recorded as cancelled")
    assert not harness.results(chat["id"]) and len(img.requests) == 1


class Forwarder:
    """A round-robin reverse proxy for the webhook, as Caddy in the compose file: each update to the next replica;
    `fan_out` sends the next update to every replica at once (a retry that reached two of them)."""

    def __init__(self, ports: list[int], path: str) -> None:
        self.ports, self.path = ports, path
        self.port = free_port()
        self.fan_out = False
        self.routes: dict[int, list[tuple[int, int]]] = defaultdict(list)  # update_id -> [(port, status)]
        self._next = itertools.cycle(ports)
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def start(self) -> None:
        self._session = ClientSession()
        app = web.Application()
        app.router.add_post(self.path, self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("content-type", "x-telegram-bot-api-secret-token")
        }
        ports = self.ports if self.fan_out else [next(self._next)]
        self.fan_out = False
        statuses = await asyncio.gather(*(self._post(port, body, headers) for port in ports))
        update_id = (await request.json()).get("update_id")
        self.routes[update_id] += list(zip(ports, statuses))
        return web.Response(status=statuses[0])

    async def _post(self, port: int, body: bytes, headers: dict[str, str]) -> int:
        assert self._session is not None
        try:
            async with self._session.post(f"http://127.0.0.1:{port}{self.path}", data=body, headers=headers) as r:
                return r.status
        except OSError:
            return 502  # that replica is not up yet: Telegram tries again


async def test_two_webhook_replicas_keep_a_chats_taps_in_order(fleet, harness, tg, img):
    ports = [free_port(), free_port()]
    forwarder = Forwarder(ports, "/tg/hook")
    await forwarder.start()
    try:
        fleet.env.update(TELEGRAM_WEBHOOK_URL=forwarder.url, TELEGRAM_WEBHOOK_SECRET=SECRET)
        replicas = await asyncio.gather(
            *(fleet.start(WORKER_CONCURRENCY="0", HTTP_PORT=str(p), name=f"replica-{p}") for p in ports)
        )
        await fleet.start("worker")
        assert len(tg.calls_of("setWebhook")) == 2 and not tg.calls_of("getUpdates")  # the worker set none
        user, chat = harness.person()

        # a quick "16:9, then Generate", each tap to another replica
        harness.send(chat, user, "/imagine quick taps")
        keyboard = await harness.keyboard(chat["id"], timeout=20)
        taps = [
            tg.press(keyboard, harness.button(keyboard, label)["callback_data"], user) for label in ("16:9", "Generate")
        ]
        (upload,) = await harness.result(chat["id"], timeout=20)
        assert [r.body["aspect_ratio"] for r in img.requests] == ["16:9"] and "16:9" in upload.params["caption"]
        assert all(tg.answered.get(q) is not None for q in taps)
        tap_ports = [
            port
            for d in tg.webhook_deliveries
            if "callback_query" in d.update
            for port, _ in forwarder.routes[d.update["update_id"]]
        ]
        assert len(set(tap_ports)) == 2

        # one update that reached both replicas makes one job
        forwarder.fan_out = True
        harness.send(chat, user, "/imagine delivered twice --ar 1:1 --1k")
        await harness.result(chat["id"], count=2, timeout=20)
        harness.send(chat, user, "/help")  # handled after anything the duplicate could have queued
        await harness.reply_text(chat["id"], "/imagine", timeout=20)
        twice = next(routes for routes in forwarder.routes.values() if len(routes) == 2)
        assert sorted(twice) == sorted((port, 200) for port in ports)
        assert len(harness.results(chat["id"])) == 2
        assert sum(r.body["prompt"] == "delivered twice" for r in img.requests) == 1

        async def duplicates() -> float:
            return sum([await metric(r, "imagine_webhook_duplicates_total") for r in replicas])

        await eventually(duplicates, 10, "the duplicate counted")
        assert await duplicates() == 1

        # a wrong secret is refused by every replica
        async with httpx.AsyncClient(timeout=10) as http:
            for port in ports:
                wrong = await http.post(
                    f"http://127.0.0.1:{port}/tg/hook",
                    json={"update_id": 1},
                    headers={"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"},
                )
                assert wrong.status_code == 403
    finally:
        await fleet.stop()
        await forwarder.stop()


async def test_the_original_is_sent_after_its_worker_is_gone(fleet, harness, tg, img):
    intake = await fleet.start(WORKER_CONCURRENCY="0")
    worker = await fleet.start("worker")
    user, chat = harness.person()
    harness.send(chat, user, "/imagine kept for later --ar 1:1 --1k")
    await harness.result(chat["id"], timeout=20)

    async def settled() -> bool:
        return bool(await fetch(fleet.database_url, "SELECT 1 FROM jobs WHERE status = 'done' AND settled = 2"))

    await eventually(settled, 20, "the delivery to be recorded")
    await worker.kill()
    shutil.rmtree(worker.data_dir)
    assert not list((intake.data_dir / "originals").glob("*"))  # the intake never had the file

    photo = next(m for m in tg.bot_messages(chat["id"]) if m.get("photo"))
    await harness.press(photo, "📄 Original", user)
    document = await tg.wait_for(lambda: tg.calls_of("sendDocument"), 15, "the original as a file")
    ((_, data, _),) = document[0].files.values()
    assert data == img.image_for(img.requests[0])
    assert len(img.requests) == 1  # sent from the database, not made again


async def test_readyz_follows_postgresql_both_ways_without_a_restart(tg, img, tmp_path):
    cluster, why = start_cluster(given=False)  # of its own: stopping the session's would break other tests
    if cluster is None:
        if os.environ.get("IMAGINE_REQUIRE_POSTGRES"):
            pytest.fail(f"PostgreSQL is required here: {why}")
        pytest.skip(f"PostgreSQL: {why}")
    fleet = Fleet(tg, img, tmp_path, cluster.new_database())
    try:
        process = await fleet.start("worker")

        async def ready_is(status: int) -> httpx.Response | None:
            answer = await process.get("/readyz")
            return answer if answer.status_code == status else None

        await eventually(lambda: ready_is(200), 15, "/readyz 200")
        cluster.stop()
        down = await eventually(lambda: ready_is(503), 15, "/readyz 503 with the database stopped")
        assert "database" in down.json()["reason"]
        assert (await process.get("/healthz")).status_code == 200
        cluster.start()
        await eventually(lambda: ready_is(200), 20, "/readyz 200 once the database is back")
        assert process.proc.returncode is None
        log = process.log.read_text(errors="replace")
        assert "Traceback" not in log  # an outage is an expected failure: one line now and then, no stack
        assert len([line for line in log.splitlines() if "WARNING" in line]) < 20
    finally:
        await fleet.stop()
        print(fleet.logs())
        remove_cluster(cluster)


async def test_status_lines_only_move_forward_across_an_intake_and_two_workers(fleet, harness, tg, img):
    """The intake shows a waiting line, a worker takes it over once its image API call began: every edit of
    every line, as the Bot API received them, goes queued → generating → sending → result, never back."""
    await fleet.start(WORKER_CONCURRENCY="0")
    await asyncio.gather(fleet.start("worker", WORKER_CONCURRENCY="2"), fleet.start("worker", WORKER_CONCURRENCY="2"))
    img.delay = 6
    people = [harness.person() for _ in range(8)]
    keyboards = []
    for i, (user, chat) in enumerate(people):
        harness.send(chat, user, f"/imagine line u{i} n1 --ar 1:1")
        keyboards.append(await harness.keyboard(chat["id"], timeout=15))
    for (user, chat), keyboard in zip(people, keyboards, strict=True):
        tg.flood(1, method="editMessageText", chat_id=chat["id"])  # whoever edits first waits a second
        await harness.press(keyboard, "Generate", user)
    for _, chat in people:
        await harness.result(chat["id"], timeout=60)
    for i, (_, chat) in enumerate(people):
        history = line_history(tg, chat["id"])
        assert_forward(history)
        (call,) = [r for r in img.requests if f"u{i} n1" in r.body["prompt"]]
        first_working = next(at for stage, _, at in history if stage == WORKING)
        assert first_working >= call.started  # "Generating" once the image API has the request, not before


async def test_two_replicas_receiving_the_same_payment_credit_it_once(fleet, harness, tg, img):
    """Telegram sends a successful_payment again (a new update id) and it reaches the other replica, and once more
    to both at once: the charge id is the key, so the credits are added once, and the buyer thanked once."""
    ports = [free_port(), free_port()]
    forwarder = Forwarder(ports, "/tg/hook")
    await forwarder.start()
    try:
        fleet.env.update(
            TELEGRAM_WEBHOOK_URL=forwarder.url,
            TELEGRAM_WEBHOOK_SECRET=SECRET,
            STARS_PACKS="100:50",
            USER_DAILY_QUOTA="2",
        )
        replicas = await asyncio.gather(
            *(fleet.start(WORKER_CONCURRENCY="0", HTTP_PORT=str(p), name=f"replica-{p}") for p in ports)
        )
        user, chat = harness.person()
        harness.send(chat, user, "/buy")
        offer = await harness.reply_text(chat["id"], "Choose a pack", timeout=20)
        await harness.press(offer, "100 credits", user, timeout=20)
        invoice = await tg.wait_for(lambda: tg.invoices(chat["id"]) and tg.invoices(chat["id"])[-1], 20, "invoice")
        charge = await tg.pay(user, invoice)
        first = tg.star_payments[charge].update
        again = tg.redeliver(first)  # round-robin: the other replica
        forwarder.fan_out = True
        tg.redeliver(first)  # to both replicas at once
        await tg.wait_for(
            lambda: sum("successful_payment" in (d.update.get("message") or {}) for d in tg.webhook_deliveries) >= 3,
            20,
            "three deliveries of the payment",
        )
        harness.send(chat, user, "/usage")  # handled after the payments: the chat's updates keep their order
        usage = await harness.reply_text(chat["id"], "Purchased", timeout=20)
        assert "Purchased: 100 credits" in usage["text"]

        received = {
            port
            for update_id in (first["update_id"], again["update_id"])
            for port, status in forwarder.routes[update_id]
            if status == 200
        }
        assert received == set(ports)
        rows = await fetch(fleet.database_url, "SELECT charge_id, credits FROM payments")
        assert [(r["charge_id"], r["credits"]) for r in rows] == [(charge, 100)]
        assert sum("credits added" in x for x in harness.texts(chat["id"])) == 1

        async def purchase_counted() -> bool:  # counted just after the purchase is recorded and told
            credits = sum([await metric(r, "imagine_credits_purchased_total") for r in replicas])
            stars = sum([await metric(r, "imagine_stars_received_total") for r in replicas])
            assert credits <= 100 and stars <= 50, (credits, stars)
            return (credits, stars) == (100, 50)

        await eventually(purchase_counted, 10, "the purchase counted once")
    finally:
        await fleet.stop()
        await forwarder.stop()


async def test_inline_and_guest_requests_through_webhook_replicas_and_a_worker(fleet, harness, tg, img):
    """Inline mode across processes: two webhook replicas take the updates (the inline query answered by one, the
    chosen result and the taps by either), a worker runs the jobs and edits the inline message."""
    storage = -100_555
    ports = [free_port(), free_port()]
    forwarder = Forwarder(ports, "/tg/hook")
    await forwarder.start()
    try:
        fleet.env.update(
            TELEGRAM_WEBHOOK_URL=forwarder.url, TELEGRAM_WEBHOOK_SECRET=SECRET, INLINE_STORAGE_CHAT_ID=str(storage)
        )
        replicas = await asyncio.gather(
            *(fleet.start(WORKER_CONCURRENCY="0", HTTP_PORT=str(p), name=f"replica-{p}") for p in ports)
        )
        worker = await fleet.start("worker")
        allowed = tg.calls_of("setWebhook")[-1].params["allowed_updates"]
        assert {"inline_query", "chosen_inline_result", "guest_message"} <= set(allowed)
        user, _ = harness.person()
        group = tg.group(-100_321, "Elsewhere")

        query_id = tg.send_inline_query(user, "a fox across processes --ar 16:9 --size 1K", chat_type="supergroup")
        answer = await tg.wait_for(lambda: tg.inline_answers.get(query_id), 10, "the inline answer")
        inline_id = tg.choose_inline_result(user, query_id, answer["results"][0]["id"], chat=group).inline_message_id

        def image_count(count: int):
            def probe():
                edits = [c for c in tg.calls_of("editMessageMedia") if c.params.get("inline_message_id") == inline_id]
                return len(edits) >= count and "photo" in (tg.inline_message(inline_id) or {})

            return probe

        await tg.wait_for(image_count(1), 30, "the image in the inline message")
        assert "16:9 · 1K · 1376×768" in tg.inline_message(inline_id)["caption"]
        again = next(
            b["callback_data"]
            for row in tg.inline_message(inline_id)["reply_markup"]["inline_keyboard"]
            for b in row
            if "Again" in b["text"]
        )
        tg.press_inline(inline_id, again, user)
        await tg.wait_for(image_count(2), 30, "the image made again in the same message")

        guest = tg.send_guest_message(group, user, f"@{tg.username} a guest fox --ar 1:1 --size 1K")
        await tg.wait_for(lambda: tg.guest_answers.get(guest["guest_query_id"]), 10, "the guest answer")
        await tg.wait_for(
            lambda: len(img.requests) == 3 and len(tg.calls_of("editMessageMedia")) == 3,
            30,
            "the guest request's image",
        )
        assert [r.body["prompt"] for r in img.requests] == ["a fox across processes"] * 2 + ["a guest fox"]

        async def worker_did_all() -> bool:
            return await metric(worker, "imagine_jobs_finished_total", outcome="done") == 3

        await eventually(worker_did_all, 10, "the worker to record three jobs done")
        assert all([await metric(r, "imagine_jobs_finished_total", outcome="done") == 0 for r in replicas])
        # a process that did not put the picture there tries the message's text first, then its caption
        # (there is no text in it once it is a picture)
        assert {(c.method, c.params.get("inline_message_id")) for c in tg.refused()} <= {("editMessageText", inline_id)}
    finally:
        await fleet.stop()
        await forwarder.stop()
