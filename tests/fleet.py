"""Real bot processes (`python -m bot`, `python -m bot worker`) against the fakes of this process, on one database.

Used by tests/test_processes.py and bench/scaleout.py. Every process gets its own DATA_DIR (so nothing passes
between processes except through the database) and an HTTP port for /healthz, /readyz and /metrics; its log goes
to a file, so a chatty process never blocks on a full pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.fakes.imageapi import FakeImageAPI
from tests.fakes.telegram import FakeBotAPI
from tests.processes import bot_env, spawn

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class BotProcess:
    name: str
    proc: asyncio.subprocess.Process
    port: int
    data_dir: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def cpu_seconds(self) -> float:
        """User + system CPU of the running process, from /proc (Linux)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.get(self.url + path)

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self, timeout: float = 15) -> None:
        """SIGTERM, as an orchestrator stops it; SIGKILL when it does not end in time."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except TimeoutError:
                await self.kill()


class Fleet:
    """Start bot processes sharing `database_url`; `stop()` ends all that are still running."""

    def __init__(self, tg: FakeBotAPI, img: FakeImageAPI, folder: Path, database_url: str, **env: str) -> None:
        self.tg, self.img, self.folder, self.database_url = tg, img, folder, database_url
        self.env = {
            **bot_env(tg, img),
            "DATABASE_URL": database_url,
            "HTTP_HOST": "127.0.0.1",
            "SHUTDOWN_GRACE_SECONDS": "0.5",
            "USER_DAILY_QUOTA": "0",
            "IMAGE_API_RETRY_BACKOFF": "0.05",
            "TELEGRAM_MAX_MESSAGES_PER_SECOND": "0",
            "TELEGRAM_STARTUP_WAIT_SECONDS": "10",
            **env,
        }
        self.processes: list[BotProcess] = []

    async def start(self, *args: str, name: str | None = None, ready: bool = True, **env: str) -> BotProcess:
        """`python -m bot *args` with the fleet's environment plus `env`; waits until its /healthz answers,
        which is after its services (the claim loop, the inbox) have started."""
        name = name or f"{args[0] if args else 'intake'}-{len(self.processes) + 1}"
        port = int(env.pop("HTTP_PORT", 0)) or free_port()
        data_dir = self.folder / name
        data_dir.mkdir(parents=True, exist_ok=True)
        log = self.folder / f"{name}.log"
        with log.open("ab") as out:
            environment = {**self.env, "DATA_DIR": str(data_dir), "HTTP_PORT": str(port), **env}
            proc = await spawn(*args, env=environment, cwd=data_dir, stdout=out, stderr=out)
        process = BotProcess(name, proc, port, data_dir, log)
        self.processes.append(process)
        if ready:
            await self.wait_healthy(process)
        return process

    async def wait_healthy(self, process: BotProcess, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as http:
            while True:
                if process.proc.returncode is not None:
                    raise AssertionError(f"{process.name} exited with {process.proc.returncode}:\n{process.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(process.url + "/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"{process.name} did not come up in {timeout} s:\n{process.log_tail()}")
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        await asyncio.gather(*(p.stop() for p in self.processes))

    def logs(self) -> str:
        return "\n".join(f"---- {p.name} (pid {p.pid}) ----\n{p.log_tail()}" for p in self.processes)
