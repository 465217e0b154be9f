"""`python -m bot` as the tests start it: in a folder of the test's, with an environment built from nothing but the
caller's PATH and HOME, so that no TELEGRAM_/IMAGE_ setting of the machine running the tests leaks in."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import IO, Any

from bot.config import Settings
from tests.fakes.imageapi import FakeImageAPI
from tests.fakes.telegram import FakeBotAPI

BASE_ENV = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
PIPE = asyncio.subprocess.PIPE


def fakes_env(tg: FakeBotAPI | None = None, img: FakeImageAPI | None = None) -> dict[str, str]:
    """The secrets and addresses that point the bot at the fakes given."""
    env: dict[str, str] = {}
    if tg is not None:
        env |= {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_BASE_URL": tg.base_url}
        env["TELEGRAM_FILE_BASE_URL"] = tg.base_file_url
    if img is not None:
        env |= {"IMAGE_API_KEY": img.api_key, "IMAGE_API_BASE_URL": img.base_url}
    return env


def bot_env(tg: FakeBotAPI | None = None, img: FakeImageAPI | None = None, **values: str) -> dict[str, str]:
    """PATH and HOME, the fakes' secrets and addresses (those given), then `values` (NAME=value) over them."""
    return BASE_ENV | fakes_env(tg, img) | values


def settings_env(settings: Settings, **values: str) -> dict[str, str]:
    """`bot_env` for a process that runs with these test settings' secrets, addresses and DATA_DIR."""
    return bot_env(
        TELEGRAM_BOT_TOKEN=settings.telegram_bot_token.get_secret_value(),
        IMAGE_API_KEY=settings.image_api_key.get_secret_value(),
        IMAGE_API_BASE_URL=settings.image_api_base_url,
        TELEGRAM_API_BASE_URL=settings.telegram_api_base_url,
        TELEGRAM_FILE_BASE_URL=settings.telegram_file_base_url,
        DATA_DIR=str(settings.data_dir),
        **values,
    )


async def spawn(
    *args: str,
    env: dict[str, str],
    cwd: Path,
    stdout: int | IO[Any] = PIPE,
    stderr: int | IO[Any] = PIPE,
    prefix: tuple[str, ...] = (),
) -> asyncio.subprocess.Process:
    """`python -m bot *args` (after `prefix`, e.g. a command that drops privileges), started in `cwd`."""
    return await asyncio.create_subprocess_exec(
        *prefix, sys.executable, "-m", "bot", *args, env=env, cwd=cwd, stdout=stdout, stderr=stderr
    )


async def spawn_polling(env: dict[str, str], tg: FakeBotAPI, cwd: Path) -> asyncio.subprocess.Process:
    """A bot process (its output dropped) once it polls the fake Bot API; one that exits first fails the test with
    its error output."""
    polls = len(tg.calls_of("getUpdates"))
    proc = await spawn(env=env, cwd=cwd, stdout=asyncio.subprocess.DEVNULL)
    await tg.wait_for(
        lambda: proc.returncode is not None or len(tg.calls_of("getUpdates")) > polls, 20, "the bot process to poll"
    )
    if proc.returncode is not None:
        assert proc.stderr is not None
        raise AssertionError((await proc.stderr.read()).decode())
    return proc


async def run(*args: str, env: dict[str, str], cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    """`python -m bot *args` to its end: the exit code, its output and its error output."""
    proc = await spawn(*args, env=env, cwd=cwd)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
