"""The bot as a service: webhook mode through the fake Bot API, health, readiness, metrics, JSON logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import signal
import socket
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import bot.app
from bot.config import SettingsError, load_settings
from bot.logs import setup_logging
from bot.metrics import Metrics
from bot.serve.http import HttpServer, build_app
from bot.serve.readiness import Readiness
from bot.serve.webhook import SECRET_HEADER, WebhookEndpoint
from tests.processes import bot_env, spawn

SECRET = "s3cret-Token_for_tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def webhook_settings(port: int | None = None) -> dict:
    port = port or free_port()
    return {
        "telegram_webhook_url": f"http://127.0.0.1:{port}/tg/hook",
        "telegram_webhook_secret": SECRET,
        "telegram_webhook_max_connections": 7,
        "http_host": "127.0.0.1",
        "http_port": port,
    }


def sample(text: str, name: str, **labels: str) -> float:
    """One sample's value in a Prometheus exposition; 0 when absent."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def update_of(chat: dict, user: dict, text: str, update_id: int = 10**6) -> dict:
    entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}] if text.startswith("/") else []
    return {
        "update_id": update_id,
        "message": {"message_id": 10**5, "date": 0, "chat": chat, "from": user, "text": text, "entities": entities},
    }


async def test_webhook_keyboard_flow(tg, start_bot, harness):
    running = await start_bot(**webhook_settings())
    settings = running.settings
    hook = tg.webhook
    assert hook["url"] == settings.telegram_webhook_url and hook["secret_token"] == SECRET
    assert hook["max_connections"] == 7 and hook["allowed_updates"] == bot.app.ALLOWED_UPDATES
    user, chat = harness.person()
    harness.send(chat, user, "/imagine a fox in the snow")
    keyboard = await harness.keyboard(chat["id"])
    await harness.press(keyboard, "16:9", user)
    await harness.press(keyboard, "Generate", user)
    (upload,) = await harness.result(chat["id"])
    assert "16:9" in upload.params["caption"]
    assert not tg.calls_of("getUpdates")  # nothing polls in webhook mode
    assert tg.webhook_deliveries and all(d.status == 200 for d in tg.webhook_deliveries)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"http://127.0.0.1:{settings.http_port}/healthz")).status_code == 200


async def test_webhook_refuses_a_missing_or_wrong_secret(tg, start_bot, harness, caplog):
    running = await start_bot(**webhook_settings())
    url = running.settings.telegram_webhook_url
    user, chat = harness.person()
    body = update_of(chat, user, "/imagine refused --ar 1:1 --1k")
    caplog.set_level(logging.WARNING, logger="bot.serve.webhook")
    async with httpx.AsyncClient() as http:
        missing = await http.post(url, json=body)
        wrong = await http.post(url, json=body, headers={SECRET_HEADER: SECRET + "x"})
        assert missing.status_code == wrong.status_code == 403
        harness.send(chat, user, "/help")  # handled after anything that got in before it
        await harness.reply_text(chat["id"], "/imagine")
        metrics = (await http.get(f"http://127.0.0.1:{running.settings.http_port}/metrics")).text
    assert not harness.results(chat["id"]) and not harness.img.requests
    refusals = [r for r in caplog.records if r.name == "bot.serve.webhook" and "refused" in r.getMessage()]
    assert [r.levelname for r in refusals] == ["WARNING", "WARNING"]  # one line per request
    assert "no secret" in refusals[0].getMessage() and "wrong secret" in refusals[1].getMessage()
    assert SECRET not in caplog.text
    assert sample(metrics, "imagine_webhook_refused_total", reason="secret") == 2


async def test_the_same_update_twice_makes_one_job(tg, start_bot, harness):
    running = await start_bot(**webhook_settings())
    user, chat = harness.person()
    harness.send(chat, user, "/imagine one cat only --ar 1:1 --1k")
    await harness.result(chat["id"])
    delivered = next(d.update for d in tg.webhook_deliveries if "one cat" in str(d.update))
    async with httpx.AsyncClient() as http:
        again = await http.post(running.settings.telegram_webhook_url, json=delivered, headers={SECRET_HEADER: SECRET})
        assert again.status_code == 200  # acknowledged, so Telegram stops sending it
        harness.send(chat, user, "/help")  # in order after the duplicate, had it been queued
        await harness.reply_text(chat["id"], "/imagine")
        metrics = (await http.get(f"http://127.0.0.1:{running.settings.http_port}/metrics")).text
    assert len(harness.results(chat["id"])) == 1 and len(harness.img.requests) == 1
    assert sample(metrics, "imagine_webhook_duplicates_total") == 1


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"message": {}}', b'{"update_id": "5"}', b'{"update_id": true}', b""]
)
async def test_a_body_that_is_not_an_update_is_400(start_bot, body):
    running = await start_bot(**webhook_settings())
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            running.settings.telegram_webhook_url,
            content=body,
            headers={SECRET_HEADER: SECRET, "Content-Type": "application/json"},
        )
    assert answer.status_code == 400


class FlakySink:
    """An UpdateSink whose first `failures` records fail, as a database that is briefly away."""

    def __init__(self, failures: int) -> None:
        self.failures, self.accepted = failures, []

    async def accept(self, payload: dict) -> bool:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database away")
        self.accepted.append(payload["update_id"])
        return True


async def test_an_unrecorded_update_is_500_and_telegram_sends_it_again(tg):
    sink, port = FlakySink(failures=2), free_port()
    metrics = Metrics()

    async def fine() -> None:
        return None

    app = build_app(Readiness(fine, lambda: 0.0, fine), metrics, ("/hook", WebhookEndpoint(SECRET, sink, metrics)))
    server = HttpServer(app, "127.0.0.1", port)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"{tg.base_url}{tg.token}/") as http:
            await http.post("setWebhook", json={"url": f"http://127.0.0.1:{port}/hook", "secret_token": SECRET})
        user = tg.user(5, "Eve")
        tg.send_text(tg.private_chat(user), user, "hello")
        await tg.wait_for(lambda: sink.accepted, 10, "the update to be recorded")
    finally:
        await server.stop()
    assert [d.status for d in tg.webhook_deliveries] == [500, 500, 200]
    assert len(sink.accepted) == 1
    assert sample(metrics.exposition()[0].decode(), "imagine_webhook_refused_total", reason="not_recorded") == 2


async def test_polling_deletes_a_webhook_left_behind(tg, start_bot, harness):
    tg.webhook = {"url": "http://127.0.0.1:1/old-hook"}
    await start_bot()
    assert tg.webhook is None and tg.calls_of("deleteWebhook")
    user, chat = harness.person()
    harness.send(chat, user, "/help")
    await harness.reply_text(chat["id"], "/imagine")


async def test_readyz_follows_the_database_and_healthz_stays(start_bot, monkeypatch):
    started = []
    original = bot.app.start_services

    async def keep(app, clock=None, **kwargs):
        started.append(await original(app, clock, **kwargs))
        return started[-1]

    monkeypatch.setattr(bot.app, "start_services", keep)
    port = free_port()
    await start_bot(http_host="127.0.0.1", http_port=port)  # polling mode, with HTTP_PORT set
    store = started[0].store
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:

        async def ready_is(status: int) -> httpx.Response:
            async def probe() -> httpx.Response | None:
                answer = await http.get("/readyz")
                return answer if answer.status_code == status else None

            return await _eventually(probe, 15, f"/readyz {status}")

        assert (await ready_is(200)).json() == {"ready": True}
        await store.close()  # the database stops answering
        down = await ready_is(503)
        assert down.json()["ready"] is False and "database" in down.json()["reason"]
        assert "\n" not in down.text
        assert (await http.get("/healthz")).status_code == 200
        await store.open()  # and comes back: no restart needed
        await ready_is(200)


async def _eventually(probe, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while (value := await probe()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
    return value


async def test_readiness_asks_the_bot_api_only_when_it_was_quiet():
    now = [1000.0]
    last_answer = [990.0]
    pings, probes = [], []
    probe_fails = [True]

    async def ping() -> None:
        pings.append(now[0])

    async def probe() -> None:
        probes.append(now[0])
        if probe_fails[0]:
            raise ConnectionError("no route")
        last_answer[0] = now[0]

    readiness = Readiness(ping, lambda: last_answer[0], probe, clock=lambda: now[0])
    assert await readiness.reason() is None and not probes  # a call succeeded 10 s ago
    assert await readiness.reason() is None and len(pings) == 1  # the database answer is cached
    now[0] += 61  # quiet for over a minute: getMe decides, and it fails
    assert "Bot API" in await readiness.reason()
    now[0] += 5
    assert "Bot API" in await readiness.reason() and len(probes) == 1  # no second getMe within 10 s
    probe_fails[0] = False
    now[0] += 6
    assert await readiness.reason() is None and len(probes) == 2
    now[0] += 30
    assert await readiness.reason() is None and len(probes) == 2  # that getMe counts as a recent answer


async def test_metrics_move_after_a_job(start_bot, harness):
    port = free_port()
    await start_bot(http_host="127.0.0.1", http_port=port)
    user, chat = harness.person()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        before = (await http.get("/metrics")).text
        harness.send(chat, user, "/imagine counted --ar 1:1 --1k")
        await harness.result(chat["id"])

        async def finished() -> str | None:
            text = (await http.get("/metrics")).text
            return text if sample(text, "imagine_jobs_finished_total", outcome="done") else None

        after = await _eventually(finished, 10, "the job to be counted")
        answer = await http.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    assert sample(before, "imagine_jobs_finished_total", outcome="done") == 0
    assert sample(after, "imagine_jobs_finished_total", outcome="done", error_kind="") == 1
    assert sample(after, "imagine_upstream_seconds_count", size="1K") == 1
    assert sample(after, "imagine_deliveries_total", kind="photo") == 1
    assert sample(after, "imagine_updates_received_total", type="message") >= 1
    assert sample(after, "imagine_jobs_running") == 0 and sample(after, "imagine_jobs_waiting") == 0
    assert sample(after, "imagine_size_mismatches_total", size="1K") == 0


async def test_metrics_count_size_mismatches_and_retry_after_waits(tg, start_bot, harness):
    port = free_port()
    await start_bot(http_host="127.0.0.1", http_port=port)
    user, chat = harness.person()
    harness.img.size_next(1024, 1024)
    harness.send(chat, user, "/imagine wrong shape --ar 16:9 --2k")
    await harness.result(chat["id"])
    tg.fail_next("sendMessage", retry_after=1)
    harness.send(chat, user, "/help")
    await harness.reply_text(chat["id"], "/imagine")  # sent once the wait was over
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        text = (await http.get("/metrics")).text
    assert sample(text, "imagine_size_mismatches_total", size="2K") == 1
    assert sample(text, "imagine_telegram_retry_after_total") == 1
    assert sample(text, "imagine_telegram_retry_after_seconds_total") == 1


@pytest.mark.parametrize("log_format", ["text", "json"])
async def test_logs_mask_every_secret_in_both_formats(tg, img, start_bot, harness, log_format):
    stream = io.StringIO()
    secrets = [tg.token, img.api_key, SECRET]
    handler = setup_logging("DEBUG", secrets, stream, log_format=log_format)
    try:
        await start_bot(**webhook_settings())
        user, chat = harness.person()
        harness.send(chat, user, "/imagine logged --ar 1:1 --1k")
        await harness.result(chat["id"])
        await tg.wait_for(
            lambda: '"outcome"' in stream.getvalue() or "1:1 · 1K: done" in stream.getvalue(), 10, "the job's line"
        )
        try:
            raise RuntimeError(f"token {tg.token} key {img.api_key} secret {SECRET}")
        except RuntimeError:
            logging.getLogger("bot.test").exception("failed with %s", img.api_key)
    finally:
        logging.getLogger().removeHandler(handler)
    text = stream.getvalue()
    assert all(secret not in text for secret in [*secrets, tg.token.split(":", 1)[1]])
    assert "***" in text
    if log_format == "text":
        assert "Traceback" in text
        return
    lines = [json.loads(line) for line in text.splitlines()]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    job = next(line for line in lines if line.get("outcome") == "done")
    assert job["chat_id"] == chat["id"] and job["user_id"] == user["id"] and job["size"] == "1K" and job["job_id"]
    failure = next(line for line in lines if line["logger"] == "bot.test")
    assert failure["level"] == "ERROR" and "RuntimeError" in failure["exception"]
    assert failure["message"] == "failed with ***"


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"telegram_webhook_url": "https://bot.example.org/hook"}, "TELEGRAM_WEBHOOK_SECRET is not set"),
        (
            {"telegram_webhook_url": "https://bot.example.org/hook", "telegram_webhook_secret": "has space"},
            "TELEGRAM_WEBHOOK_SECRET is invalid",
        ),
        (
            {"telegram_webhook_url": "https://bot.example.org/hook", "telegram_webhook_secret": "x" * 257},
            "TELEGRAM_WEBHOOK_SECRET is invalid",
        ),
        ({"telegram_webhook_url": "bot.example.org/hook", "telegram_webhook_secret": "ok"}, "TELEGRAM_WEBHOOK_URL"),
        ({"telegram_webhook_max_connections": 0}, "TELEGRAM_WEBHOOK_MAX_CONNECTIONS"),
        ({"log_format": "xml"}, "LOG_FORMAT"),
    ],
)
def test_service_settings_are_checked(values: dict, fragment: str) -> None:
    with pytest.raises(SettingsError, match=fragment) as raised:
        load_settings(_env_file=None, telegram_bot_token="1:a", image_api_key="k", **values)
    assert "has space" not in str(raised.value)  # a bad secret is not echoed


def test_http_port_rule() -> None:
    base = {"_env_file": None, "telegram_bot_token": "1:a", "image_api_key": "k"}
    assert load_settings(**base).listen_port is None  # polling: no server unless asked
    assert load_settings(**base, http_port="").listen_port is None
    assert load_settings(**base, http_port="9100").listen_port == 9100
    webhook = {"telegram_webhook_url": "https://bot.example.org/tg/hook", "telegram_webhook_secret": "abc"}
    settings = load_settings(**base, **webhook)
    assert settings.listen_port == 8080 and settings.webhook_path == "/tg/hook"
    assert "abc" in settings.secrets()  # masked in logs like the token


async def test_a_taken_port_is_one_line_and_exit_2(tg, img, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = bot_env(tg, img, DATA_DIR=str(tmp_path / "data"), HTTP_HOST="127.0.0.1", HTTP_PORT=str(port))
        proc = await spawn(env=env, cwd=tmp_path)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, err.decode()
    last = err.decode().strip().splitlines()[-1]
    assert f"cannot listen on 127.0.0.1:{port}" in last and "Traceback" not in err.decode()


async def test_sigterm_in_webhook_mode_drains_like_polling(make_settings, tg, img, harness, tmp_path):
    """SIGTERM with the HTTP server running: the running image still finishes and the exit is clean."""
    settings = make_settings()
    webhook = {key.upper(): str(value) for key, value in webhook_settings().items()}
    env = bot_env(tg, img, DATA_DIR=str(settings.data_dir), SHUTDOWN_GRACE_SECONDS="10", **webhook)
    proc = await spawn(env=env, cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL)
    try:
        await tg.wait_for(lambda: proc.returncode is not None or tg.webhook, 20, "the webhook to be set")
        user, chat = harness.person()
        img.delay_next(1.0)
        harness.send(chat, user, "/imagine finishes after the signal --ar 1:1 --1k")
        await img.wait_for(lambda: img.inflight == 1, 15)
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (await proc.stderr.read()).decode()
    assert len(harness.results(chat["id"])) == 1
