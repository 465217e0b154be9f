"""Start-up as an operator meets it, and no secret anywhere: logs, chat messages, error output."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys

import pytest

from bot.logs import setup_logging
from tests.processes import bot_env, run, spawn


def _run_cli(args: list[str], env: dict[str, str], cwd, timeout: float = 60) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "bot", *args]
    return subprocess.run(command, env=bot_env(**env), cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": "123:abc"}, "IMAGE_API_KEY"),
        ({"TELEGRAM_BOT_TOKEN": "not-a-token", "IMAGE_API_KEY": "k"}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": "123:abc", "IMAGE_API_KEY": "k", "DEFAULT_SIZE": "8K"}, "DEFAULT_SIZE"),
        (
            {"TELEGRAM_BOT_TOKEN": "123:abc", "IMAGE_API_KEY": "k", "DEFAULT_ASPECT_RATIO": "7:3"},
            "DEFAULT_ASPECT_RATIO",
        ),
        (
            {"TELEGRAM_BOT_TOKEN": "123:abc", "IMAGE_API_KEY": "k", "IMAGE_API_BASE_URL": "dmxapi.cn"},
            "IMAGE_API_BASE_URL",
        ),
        (
            {"TELEGRAM_BOT_TOKEN": "123:abc", "IMAGE_API_KEY": "k", "MAX_CONCURRENT_GENERATIONS": "0"},
            "MAX_CONCURRENT_GENERATIONS",
        ),
    ],
)
def test_bad_settings_exit_2_with_one_line(tmp_path, env, names):
    result = _run_cli([], env, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in result.stderr
    assert "abc" not in result.stderr  # the token's secret part is never echoed


def test_settings_come_from_dotenv(tmp_path):
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=123:abc\nIMAGE_API_KEY=k\nDEFAULT_SIZE=9K\n")
    result = _run_cli([], {}, tmp_path)
    assert result.returncode == 2 and "DEFAULT_SIZE" in result.stderr


async def test_wrong_token_is_refused(tmp_path, tg, img):
    env = bot_env(tg, img, TELEGRAM_BOT_TOKEN="999:WRONG", DATA_DIR=str(tmp_path / "data"))
    proc = await spawn(env=env, cwd=tmp_path)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2, err.decode()
    assert "TELEGRAM_BOT_TOKEN was refused" in err.decode() and "Traceback" not in err.decode()
    assert "WRONG" not in err.decode()


async def test_ready_line_and_command_menu(tg, img, make_settings, start_bot):
    stream = io.StringIO()
    handler = setup_logging("INFO", [tg.token, img.api_key], stream)
    try:
        await start_bot()
        await tg.wait_for(lambda: "ready as @imagine_test_bot" in stream.getvalue(), 5, "the ready line")
    finally:
        logging.getLogger().removeHandler(handler)
    commands = {c["command"] for c in tg.commands[(None, "")]}
    assert {"imagine", "help", "start"} <= commands


async def test_no_secret_in_logs_or_chat(tg, img, start_bot, harness):
    stream = io.StringIO()
    handler = setup_logging("DEBUG", [tg.token, img.api_key], stream)
    logging.getLogger("httpx").setLevel(logging.DEBUG)  # even if someone turns request logging back on
    try:
        await start_bot()
        user, chat = harness.person()
        img.fail_next(401, body={"error": {"message": f"invalid key {img.api_key}", "code": "invalid_api_key"}})
        harness.send(chat, user, "/imagine a secret garden --ar 1:1 --1k")
        await harness.status_says(chat["id"], "API key was refused")
        img.fail_next(500, body=f"<html>proxy error for Bearer {img.api_key}</html>", times=4)
        harness.send(chat, user, "/imagine again --ar 1:1 --1k")
        await harness.status_says(chat["id"], "busy or unavailable")
        tg.fail_next("sendPhoto", 400, "Bad Request: IMAGE_PROCESS_FAILED")
        tg.fail_next("sendDocument", 400, "Bad Request: nope")
        harness.send(chat, user, "/imagine third --ar 1:1 --1k")
        await harness.status_says(chat["id"], "Telegram refused")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger("httpx").setLevel(logging.WARNING)
    log_text = stream.getvalue()
    assert "getUpdates" in log_text or "get_updates" in log_text or "HTTP" in log_text  # DEBUG really logged
    secret_part = tg.token.split(":", 1)[1]
    assert secret_part not in log_text and img.api_key not in log_text
    assert "***" in log_text  # the secrets were there to mask
    chat_text = repr([c.params for c in tg.calls])
    assert secret_part not in chat_text and img.api_key not in chat_text
    assert "Traceback" not in chat_text


def test_usual_url_slips_are_forgiven():
    from bot.config import Settings

    settings = Settings(
        _env_file=None,
        telegram_bot_token="1:a",
        image_api_key="k",
        image_api_base_url="https://www.dmxapi.cn/v1/",
        telegram_api_base_url="http://localhost:8081",
        telegram_file_base_url="http://localhost:8081/",
    )
    assert settings.image_api_base_url == "https://www.dmxapi.cn"
    assert settings.telegram_api_base_url == "http://localhost:8081/bot"
    assert settings.telegram_file_base_url == "http://localhost:8081/file/bot"


def test_unreachable_bot_api_is_one_line(tmp_path):
    result = _run_cli(
        [],
        {
            "TELEGRAM_BOT_TOKEN": "123:abc",
            "IMAGE_API_KEY": "k",
            "TELEGRAM_API_BASE_URL": "http://127.0.0.1:1/bot",
            "DATA_DIR": str(tmp_path / "d"),
            "TELEGRAM_STARTUP_WAIT_SECONDS": "0",
        },
        tmp_path,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Telegram Bot API" in lines[0] and "Traceback" not in result.stderr


async def test_a_wrong_bot_api_url_is_named_not_the_token(tmp_path, img):
    """A server that is not the Bot API (a web page's 404) is one line naming the URL and what it answered:
    exit 2, no traceback, and the token is not blamed."""
    from aiohttp import web

    async def not_found(request: web.Request) -> web.Response:
        return web.Response(
            status=404, text="<html><body><h1>404 Not Found</h1>nginx</body></html>", content_type="text/html"
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", not_found)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/wrong/bot"
    env = bot_env(
        img=img, TELEGRAM_BOT_TOKEN="123456:SECRETPART", TELEGRAM_API_BASE_URL=url, DATA_DIR=str(tmp_path / "data")
    )
    try:
        proc = await spawn(env=env, cwd=tmp_path)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await runner.cleanup()
    output = out.decode() + err.decode()
    assert proc.returncode == 2, output
    assert "Traceback" not in output and "SECRETPART" not in output
    assert "TELEGRAM_BOT_TOKEN" not in output  # a good token is not sent to be regenerated
    (line,) = [line for line in err.decode().splitlines() if line.startswith("imagine-bot:")]
    assert url in line and "404" in line and "TELEGRAM_API_BASE_URL" in line and "<html>" in line, line


async def test_a_bot_api_answering_a_user_without_is_bot_is_one_line(tmp_path, img):
    """A server answering getMe with JSON that is not a bot account (telegram-test-api leaves out `is_bot`) is
    one line naming the URL, exit 2, not PTB's TypeError traceback."""
    from aiohttp import web

    async def get_me(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "result": {"id": 666, "first_name": "Test", "username": "TestBot"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", get_me)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/bot"
    env = bot_env(
        img=img,
        TELEGRAM_BOT_TOKEN="123456:SECRETPART",
        TELEGRAM_API_BASE_URL=url,
        DATA_DIR=str(tmp_path / "data"),
    )
    try:
        code, out, err = await run(env=env, cwd=tmp_path, timeout=30)
    finally:
        await runner.cleanup()
    output = out + err
    assert code == 2, output
    assert "Traceback" not in output and "SECRETPART" not in output
    (line,) = [line for line in err.splitlines() if line.startswith("imagine-bot:")]
    assert url in line and "getMe" in line and "is_bot" in line and "TELEGRAM_API_BASE_URL" in line, line
