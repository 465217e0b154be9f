"""Fixtures: the fake Bot API and image API on loopback, and the real bot running against them."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import run_bot
from bot.config import Settings
from bot.store import Store, make_store
from tests.fakes.imageapi import FakeImageAPI
from tests.fakes.telegram import FakeBotAPI

# ---- The suite's schedule (pytest-xdist) ----
#
# Most tests wait (on the fakes' delays, status pacing, processes starting) more than they compute, so `-n auto`
# runs more workers than cores; and the long tests (marked `long`: real processes, injected faults) start first and
# are dealt out over the workers like cards, so they never end up queued behind each other at the end of the run.

WORKERS_PER_CORE = 2


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "long: runs for tens of seconds (real processes, faults); started first, spread over the workers"
    )


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: WORKERS_PER_CORE per core this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, WORKERS_PER_CORE * cores)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The `long` tests first (in their collection order), then the rest; the same order on every worker."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: each group keeps its order


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`--dist worksteal` (pyproject's addopts) with the first hand-out dealt round-robin instead of in contiguous
    blocks: every worker begins with its share of the `long` tests collected first; stealing evens out the end."""
    if config.getvalue("dist") != "worksteal":
        return None
    from xdist.scheduler import WorkStealingScheduling

    class LongFirst(WorkStealingScheduling):
        def schedule(self) -> None:
            if self.collection is not None or not self.collection_is_completed:
                return super().schedule()
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return None
            self.collection = next(iter(self.node2collection.values()))
            nodes = [node for node in self.node2pending if not node.shutting_down]
            if not self.collection or not nodes:
                return None
            for k, node in enumerate(nodes):
                dealt = list(range(k, len(self.collection), len(nodes)))
                self.node2pending[node].extend(dealt)
                node.send_runtest_some(dealt)
            self.pending[:] = []
            return None

    return LongFirst(config, log)  # type: ignore[arg-type]


@pytest.fixture
async def tg() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as fake:
        yield fake


@pytest.fixture
async def img() -> AsyncIterator[FakeImageAPI]:
    async with FakeImageAPI() as fake:
        yield fake


@pytest.fixture
def make_settings(tg: FakeBotAPI, img: FakeImageAPI, tmp_path, database_url: str) -> Callable[..., Settings]:
    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": database_url,
            "telegram_bot_token": tg.token,
            "image_api_key": img.api_key,
            "image_api_base_url": img.base_url,
            "telegram_api_base_url": tg.base_url,
            "telegram_file_base_url": tg.base_file_url,
            "data_dir": tmp_path / "data",
            "image_api_retry_backoff": 0.05,
            "shutdown_grace_seconds": 0.5,
            "user_daily_quota": 0,  # unlimited unless a test is about quotas
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]

    return make


class Harness:
    """The bot as a user meets it: send text, find the keyboard, press buttons, wait for what arrives."""

    def __init__(self, tg: FakeBotAPI, img: FakeImageAPI) -> None:
        self.tg, self.img = tg, img
        self._next_user = 1000

    def person(self, language_code: str = "en") -> tuple[dict, dict]:
        self._next_user += 1
        user = self.tg.user(self._next_user, f"User{self._next_user}", language_code=language_code)
        return user, self.tg.private_chat(user)

    def send(self, chat: dict, user: dict, text: str, **kwargs: object) -> dict:
        return self.tg.send_text(chat, user, text, **kwargs)

    def texts(self, chat_id: int) -> list[str]:
        return [m.get("text") or m.get("caption") or "" for m in self.tg.bot_messages(chat_id)]

    async def reply_text(self, chat_id: int, contains: str, timeout: float = 10) -> dict:
        def find() -> dict | None:
            return next((m for m in self.tg.bot_messages(chat_id) if contains in (m.get("text") or "")), None)

        return await self.tg.wait_for(find, timeout, f"a message containing {contains!r}")

    async def keyboard(self, chat_id: int, timeout: float = 10) -> dict:
        def find() -> dict | None:
            for m in reversed(self.tg.bot_messages(chat_id)):
                if "Generate" in str(m.get("reply_markup")):
                    return m
            return None

        return await self.tg.wait_for(find, timeout, "the /imagine keyboard")

    @staticmethod
    def buttons(message: dict) -> list[dict]:
        rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        return [b for row in rows for b in row]

    def button(self, message: dict, label: str) -> dict:
        for b in self.buttons(message):
            if b["text"] == label or b["text"] == f"✓ {label}" or label in b["text"]:
                return b
        raise AssertionError(f"no button {label!r} in {[b['text'] for b in self.buttons(message)]}")

    async def press(self, message: dict, label: str, user: dict, timeout: float = 10) -> dict:
        """Press a button and wait for the bot to answer the callback; returns the answer's params."""
        current = self.tg.message(message["chat"]["id"], message["message_id"]) or message
        query_id = self.tg.press(current, self.button(current, label)["callback_data"], user)
        return await self.tg.wait_for(lambda: self.tg.answered.get(query_id), timeout, f"answer to {label!r}")

    async def press_data(self, message: dict, data: str, user: dict, timeout: float = 10) -> dict:
        query_id = self.tg.press(message, data, user)
        return await self.tg.wait_for(lambda: self.tg.answered.get(query_id), timeout, f"answer to {data!r}")

    def results(self, chat_id: int) -> list:
        return [
            c
            for c in self.tg.calls
            if c.method in ("sendPhoto", "sendDocument") and int(c.params.get("chat_id", 0)) == chat_id
        ]

    async def result(self, chat_id: int, count: int = 1, timeout: float = 15) -> list:
        return await self.tg.wait_for(
            lambda: (r := self.results(chat_id)) and len(r) >= count and r, timeout, f"{count} result upload(s)"
        )

    async def status_says(self, chat_id: int, contains: str, timeout: float = 15) -> dict:
        """Wait until some bot message in the chat (the status line) contains the text."""
        return await self.reply_text(chat_id, contains, timeout)


@pytest.fixture
def harness(tg: FakeBotAPI, img: FakeImageAPI) -> Harness:
    return Harness(tg, img)


@dataclass
class RunningBot:
    settings: Settings
    stop_event: asyncio.Event
    task: asyncio.Task

    async def stop(self, timeout: float = 20) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, timeout)


@pytest.fixture
async def start_bot(tg: FakeBotAPI, make_settings) -> AsyncIterator[Callable]:
    """Start the real bot (same code path as `imagine-bot`) with optional setting overrides; stopped at the end."""
    running: list[RunningBot] = []

    async def start(
        clock: Callable[[], float] | None = None, free_space: Callable[[Path], int] | None = None, **overrides: object
    ) -> RunningBot:
        settings = make_settings(**overrides)
        stop = asyncio.Event()
        task = asyncio.create_task(run_bot(settings, stop, poll_timeout=1, clock=clock, free_space=free_space))

        def listening() -> int:  # polling, or (webhook mode) the webhook set once its server is up
            return len(tg.calls_of("getUpdates")) + len(tg.calls_of("setWebhook"))

        before = listening()
        await tg.wait_for(lambda: task.done() or listening() > before, 10, "the bot to poll or set its webhook")
        if task.done():
            task.result()
        running.append(RunningBot(settings, stop, task))
        return running[-1]

    yield start
    for handle in running:
        with contextlib.suppress(Exception):
            await handle.stop(15)


@pytest.fixture
async def bot(start_bot) -> RunningBot:
    return await start_bot()


# ---- PostgreSQL: one throwaway cluster for the session (tests/postgres.py) ----


@pytest.fixture(scope="session")
def pg_cluster():
    from tests.postgres import remove_cluster, start_cluster

    cluster, why = start_cluster()
    if cluster is None:
        if os.environ.get("IMAGINE_REQUIRE_POSTGRES"):  # CI: a skipped PostgreSQL test is a failure
            pytest.fail(f"PostgreSQL is required here: {why}")
        pytest.skip(f"PostgreSQL: {why}")
    yield cluster
    remove_cluster(cluster)


# The tests of these modules run twice, on SQLite and on PostgreSQL: the store level, and end to end what depends
# on the database (queue, caps, cancel, variants, originals, credits, access). tests/test_processes.py runs real
# processes on PostgreSQL; the rest run on SQLite, to keep the suite within its time.
ON_BOTH_BACKENDS = {
    "test_engine",
    "test_jobs",
    "test_edits_and_variants",
    "test_delivery",
    "test_groups_access_quota",
    "test_model_store",
    "test_payments",
    "test_prompt_helper_store",
    "test_variants_in_one_call",
    "test_inbox_taps",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.module.__name__.rsplit(".", 1)[-1] in ON_BOTH_BACKENDS:
        metafunc.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh database of the test's backend: a SQLite file, or a new database on the session's PostgreSQL."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'imagine-bot.sqlite3'}"
    return request.getfixturevalue("pg_cluster").new_database()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """The store of a fresh database of the test's backend, opened (migrated) and closed after the test."""
    opened = make_store(database_url)
    await opened.open()
    yield opened
    await opened.close()
