"""Who this process is, for leases in a shared database, and whether another process of this machine is gone."""

from __future__ import annotations

import os
import socket


def process_name() -> str:
    """Unique per process and start: host, pid and a random tail (a restarted process is a new one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


def dead_here(name: str) -> bool:
    """A process of this machine (named by `process_name`) that no longer exists."""
    host, _, rest = name.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
