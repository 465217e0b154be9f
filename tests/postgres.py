"""A throwaway PostgreSQL for the test session: `TEST_DATABASE_URL` when given, else a cluster of our own.

The cluster is made with the server binaries of the machine (`initdb`, `pg_ctl`; as root they run as the
`postgres` user), listens on a free port on 127.0.0.1 only, and is removed when the session ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Cluster:
    url: str
    folder: Path | None = None
    port: int | None = None
    bin: Path | None = None
    user: str | None = None

    def _ctl(self, *args: str) -> None:
        assert self.folder is not None and self.bin is not None
        command = [str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), *args]
        subprocess.run(_as(self.user, command), check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        """Stop the server (a test of what the bot does without its database)."""
        self._ctl("-m", "fast", "-w", "stop")

    def start(self) -> None:
        assert self.folder is not None
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        self._ctl("-o", options, "-l", str(self.folder / "log"), "-w", "start")

    def new_database(self) -> str:
        """A fresh, empty database on this server, so tests don't see each other's rows."""
        name = "t_" + uuid.uuid4().hex[:12]
        base = self.url.rsplit("/", 1)[0]
        subprocess.run(_psql(self.url, f"CREATE DATABASE {name}"), check=True, capture_output=True, timeout=30)
        return f"{base}/{name}"


def _as(user: str | None, command: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *command] if user else command


def _psql(url: str, sql: str) -> list[str]:
    return ["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql]


def server_bin() -> Path | None:
    for candidate in [shutil.which("initdb"), *sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)]:
        if candidate:
            return Path(candidate).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(*, given: bool = True) -> tuple[Cluster | None, str]:
    """(cluster, "") or (None, why PostgreSQL tests cannot run here). `given=False`: a cluster of our own even
    when TEST_DATABASE_URL is set (a test that stops and starts the server)."""
    if given and (url := os.environ.get("TEST_DATABASE_URL")):
        return Cluster(url), ""
    binaries = server_bin()
    if binaries is None:
        unset = "no TEST_DATABASE_URL and " if given else ""
        return None, f"{unset}no PostgreSQL server binaries (initdb) on this machine"
    user = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="imagine-pg-"))
    if user:
        shutil.chown(folder, user)
    try:
        subprocess.run(
            _as(
                user,
                [
                    str(binaries / "initdb"),
                    "-D",
                    str(folder / "data"),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return None, f"initdb failed: {getattr(exc, 'stderr', b'') or exc}"
    port = _free_port()
    cluster = Cluster(f"postgresql://postgres@127.0.0.1:{port}/postgres", folder, port, binaries, user)
    cluster.start()
    return cluster, ""


def remove_cluster(cluster: Cluster) -> None:
    if cluster.folder is None:
        return
    try:
        cluster.stop()
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired):
        pass
    shutil.rmtree(cluster.folder, ignore_errors=True)
