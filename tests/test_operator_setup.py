"""What a new operator meets first (issue 12): compose's container starts, `generate` needs no Telegram, settings
say everything wrong at once, start-up waits for the Bot API — all as subprocesses, the way an operator runs them."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
from pathlib import Path

import pytest
from telegram import Bot

from bot.imagegen import ImageClient, NotAnImageError
from bot.options import AspectRatio, ImageRequest, Resolution
from bot.references import UnusableReference
from bot.telegram_references import ReferenceFetcher
from tests.processes import bot_env, fakes_env, run, spawn

ROOT = Path(__file__).resolve().parent.parent


async def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> tuple[int, str, str]:
    return await run(*args, env=bot_env(**env), cwd=cwd, timeout=timeout)


# ---- the container, without Docker ----


def _dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in line[4:].split())
    return env


def _env_file(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _compose() -> tuple[dict[str, str], str]:
    """compose.yaml's `environment:` of the service, and where its volume is mounted."""
    text = (ROOT / "compose.yaml").read_text()
    block = re.search(r"^    environment:\n((?:      .*\n)+)", text, re.MULTILINE)
    environment = dict(re.findall(r"^      (\w+): *(.*)$", block.group(1), re.MULTILINE)) if block else {}
    mount = re.search(r"^      - [\w-]+:(/\S+)$", text, re.MULTILINE).group(1)
    return {k: v.strip().strip('"') for k, v in environment.items()}, mount


def _world_readable(path: Path) -> bool:
    """The image's /app is readable by its non-root user; a checkout in a private (0700) folder is not."""
    return all(part.stat().st_mode & 0o005 == 0o005 for part in [path, *path.parents] if part != Path("/"))


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or not _world_readable(ROOT),
    reason="needs root (and setpriv) and a checkout other users can read, to run the bot as nobody",
)
async def test_container_with_the_readme_env_gets_past_its_storage_checks(tmp_path, tg, img):
    """The image's environment, then .env.example's lines (the two secrets filled in, the services pointed at the
    fakes), then compose's `environment:` — compose's order — run as a non-root user in a root-owned /app."""
    compose_env, mount = _compose()
    env = {**bot_env(**_dockerfile_env()), **_env_file(ROOT / ".env.example"), **fakes_env(tg, img), **compose_env}
    app = tmp_path / "app"  # WORKDIR /app: root's, like in the image
    app.mkdir(mode=0o755)
    volume = tmp_path / "volume"  # the named volume, which Docker gives the image's /data owner
    volume.mkdir()
    os.chown(volume, 65534, 65534)
    assert env.get("DATA_DIR") == mount, "the container must keep its files in its volume"
    env["DATA_DIR"] = str(volume)  # the one substitution: the volume's mount point on this machine
    # nobody, able to read the interpreter (it may live in root's home) but not to write anything of root's
    nobody = [
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--inh-caps",
        "+dac_read_search",
        "--ambient-caps",
        "+dac_read_search",
    ]
    proc = await spawn(env=env, cwd=app, stdout=None, prefix=nobody)
    try:
        await tg.wait_for(lambda: proc.returncode is not None or tg.calls_of("getUpdates"), 30, "the bot to poll")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert tg.calls_of("getUpdates"), err.decode()
    assert (volume / "imagine-bot.sqlite3").exists()
    assert proc.returncode == 0, err.decode()


# ---- settings ----


async def test_env_example_copied_unchanged_names_every_missing_setting(tmp_path):
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    code, _, err = await _run([], {}, tmp_path)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "TELEGRAM_BOT_TOKEN is not set" in lines[0] and "IMAGE_API_KEY is not set" in lines[0]
    assert "invalid" not in lines[0]


async def test_every_bad_setting_is_named_in_one_go(tmp_path):
    env = {"TELEGRAM_BOT_TOKEN": "nope", "IMAGE_API_KEY": "k", "DEFAULT_SIZE": "8K", "USER_MAX_RUNNING": "0"}
    code, _, err = await _run([], env, tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1
    for name in ("TELEGRAM_BOT_TOKEN", "DEFAULT_SIZE", "USER_MAX_RUNNING"):
        assert name in err


# ---- generate ----


async def test_generate_needs_only_the_image_api(img, tmp_path):
    env = {"IMAGE_API_KEY": img.api_key, "IMAGE_API_BASE_URL": img.base_url, "USER_MAX_RUNNING": "0"}
    code, out, err = await _run(["generate", "a red fox", "--ar", "1:1", "--size", "1K"], env, tmp_path)
    assert code == 0, err
    assert "TELEGRAM" not in err


async def test_generate_speaks_to_a_shell(img, tmp_path):
    env = {
        "IMAGE_API_KEY": img.api_key,
        "IMAGE_API_BASE_URL": img.base_url,
        "IMAGE_API_RETRY_BACKOFF": "0.05",
        "IMAGE_API_RETRIES": "2",
    }
    img.fail_next(503, body={"error": {"message": "no capacity (request id: ABC123)", "code": "busy"}}, times=3)
    code, _, err = await _run(["generate", "a fox", "--ar", "1:1", "--size", "1K"], env, tmp_path)
    lines = err.strip().splitlines()
    assert code == 1 and "Traceback" not in err
    assert "HTTP 503" in lines[-1] and "no capacity" in lines[-1] and lines[-1].count("ABC123") == 1
    assert "admin" not in lines[-1]
    retries = [line for line in lines if "retrying" in line]
    assert len(retries) == 2 and len(lines) == 4  # the "generating…" line, one per retry, the failure


async def test_generate_names_the_url_it_could_not_reach(tmp_path):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    env = {"IMAGE_API_KEY": "k", "IMAGE_API_BASE_URL": f"http://127.0.0.1:{port}", "IMAGE_API_RETRIES": "0"}
    code, _, err = await _run(["generate", "a fox", "--ar", "1:1", "--size", "1K"], env, tmp_path)
    assert code == 1 and f"cannot reach the image API at http://127.0.0.1:{port}/v1/images/generations" in err


async def test_generate_bad_ratio_gets_the_chat_sentence(img, tmp_path):
    code, _, err = await _run(["generate", "x", "--ar", "7:5"], {"IMAGE_API_KEY": "k"}, tmp_path)
    assert code == 2 and "I don't know the shape “7:5”. Use one of: 1:1, 2:3" in err and " or 21:9." in err


# ---- start-up against a Bot API that is not there yet ----


async def test_startup_waits_for_an_unreachable_bot_api_then_gives_up_in_one_line(tmp_path):
    env = {
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "IMAGE_API_KEY": "k",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:1/bot",
        "DATA_DIR": str(tmp_path / "d"),
        "TELEGRAM_STARTUP_WAIT_SECONDS": "2",
    }
    code, _, err = await _run([], env, tmp_path)
    lines = err.strip().splitlines()
    assert code == 1 and "Traceback" not in err
    assert any("waiting for the Telegram Bot API at http://127.0.0.1:1/bot" in line for line in lines[:-1])
    assert lines[-1].startswith("imagine-bot: cannot reach the Telegram Bot API") and "gave up after 2 s" in lines[-1]
    assert "abc" not in err


async def test_startup_does_not_hang_on_a_silent_bot_api(tmp_path):
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # accepts, never answers
    port = server.sockets[0].getsockname()[1]
    env = {
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "IMAGE_API_KEY": "k",
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{port}/bot",
        "DATA_DIR": str(tmp_path / "d"),
        "TELEGRAM_STARTUP_WAIT_SECONDS": "2",
    }
    try:
        code, _, err = await _run([], env, tmp_path, timeout=25)
    finally:
        server.close()
    assert code == 1 and "cannot reach the Telegram Bot API" in err.strip().splitlines()[-1]


# ---- what the log can tell ----


async def test_not_an_image_keeps_the_request_id(img, tmp_path):
    img.junk_next("url_not_image")
    client = ImageClient(img.base_url, img.api_key, "nano-banana-2", spool_dir=tmp_path, retries=0)
    client.open()
    try:
        with pytest.raises(NotAnImageError) as info:
            await client.generate(ImageRequest("x", AspectRatio.SQUARE, Resolution.K1))
    finally:
        await client.aclose()
    assert info.value.request_id


async def test_a_reference_download_failure_keeps_its_cause(tg, tmp_path):
    from bot.originals import OriginalsStore

    tg.fail_next("getFile", 400, "Bad Request: wrong file_id specified")
    async with Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as bot:
        fetcher = ReferenceFetcher(bot, OriginalsStore(tmp_path, 1, 1), tmp_path)
        with pytest.raises(UnusableReference) as info:
            async with fetcher.fetched(("tg:nope",)):
                pass
    assert info.value.kind == "download" and "wrong file_id" in info.value.cause.lower()


async def test_startup_goes_on_once_the_bot_api_answers(tg, start_bot, harness):
    tg.fail_next("getMe", 502, "Bad Gateway", times=2)  # e.g. a self-hosted Bot API server still starting
    await start_bot(telegram_startup_wait_seconds=30)
    assert len(tg.calls_of("getMe")) >= 3
    user, chat = harness.person()
    harness.send(chat, user, "/start")
    await harness.reply_text(chat["id"], "Hi!")
