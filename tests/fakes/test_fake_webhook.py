"""Self-tests of the fake Bot API's webhook mode: what Telegram does once a webhook is set."""

from __future__ import annotations

import httpx
import pytest
from aiohttp import web

from tests.fakes.telegram import FakeBotAPI


@pytest.fixture
async def fake():
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def http(fake: FakeBotAPI):
    async with httpx.AsyncClient(base_url=f"{fake.base_url}{fake.token}/", timeout=5) as client:
        yield client


class Receiver:
    """A webhook endpoint answering the statuses it is given (then 200), recording what it got."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.got = list(statuses), []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        self.got.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


async def test_updates_are_posted_with_the_secret_and_retried_until_2xx(fake, http):
    async with Receiver([500, 502]) as receiver:
        answer = await http.post(
            "setWebhook", json={"url": receiver.url, "secret_token": "abc_DEF-1", "allowed_updates": ["message"]}
        )
        assert answer.json() == {"ok": True, "result": True}
        alice = fake.user(10, "Alice")
        fake.send_text(fake.private_chat(alice), alice, "first")
        fake.send_text(fake.private_chat(alice), alice, "second")
        await fake.wait_for(lambda: len(receiver.got) == 4, 10, "two updates, the first after two failures")
        info = (await http.post("getWebhookInfo")).json()["result"]
    assert [d.status for d in fake.webhook_deliveries] == [500, 502, 200, 200]
    assert {secret for secret, _ in receiver.got} == {"abc_DEF-1"}
    assert [u["message"]["text"] for _, u in receiver.got] == ["first", "first", "first", "second"]
    assert info["url"] == receiver.url and info["pending_update_count"] == 0
    assert info["last_error_message"].startswith("Wrong response from the webhook: 502")


async def test_get_updates_conflicts_while_a_webhook_is_set(fake, http):
    await http.post("setWebhook", json={"url": "http://127.0.0.1:1/hook"})
    answer = await http.post("getUpdates", json={"timeout": 0})
    assert answer.status_code == 409
    assert answer.json()["description"].startswith("Conflict: can't use getUpdates method while webhook is active")
    bob = fake.user(11, "Bob")
    fake.send_text(fake.private_chat(bob), bob, "kept for later")
    await fake.wait_for(lambda: fake.webhook_deliveries, 5, "a failed delivery")
    assert fake.webhook_deliveries[0].status is None  # nobody listens there: a connection error
    await http.post("deleteWebhook")
    updates = (await http.post("getUpdates", json={"timeout": 0})).json()["result"]
    assert [u["message"]["text"] for u in updates] == ["kept for later"]  # undelivered updates stay pending


async def test_set_webhook_checks_the_secret_like_telegram(fake, http):
    answer = await http.post("setWebhook", json={"url": "https://example.org/hook", "secret_token": "no spaces"})
    assert answer.status_code == 400 and "secret token" in answer.json()["description"]
    assert fake.webhook is None


async def test_webhook_gets_inline_and_guest_updates_only_when_allowed(fake, http):
    alice = fake.user(10, "Alice")
    group = fake.group(-100900, "Friends")
    async with Receiver([]) as receiver:
        await http.post("setWebhook", json={"url": receiver.url, "allowed_updates": ["message", "callback_query"]})
        fake.send_inline_query(alice, "fox")
        fake.send_guest_message(group, alice, "@imagine_test_bot a fox")
        fake.send_text(fake.private_chat(alice), alice, "/start")
        await fake.wait_for(lambda: receiver.got, 10, "the message")
        await http.post(
            "setWebhook",
            json={
                "url": receiver.url,
                "allowed_updates": [
                    "message",
                    "callback_query",
                    "inline_query",
                    "chosen_inline_result",
                    "guest_message",
                ],
            },
        )
        fake.send_inline_query(alice, "fox")
        fake.send_guest_message(group, alice, "@imagine_test_bot a fox")
        await fake.wait_for(lambda: len(receiver.got) == 3, 10, "the inline query and the guest message")
    assert [next(k for k in u if k != "update_id") for _, u in receiver.got] == [
        "message",
        "inline_query",
        "guest_message",
    ]
