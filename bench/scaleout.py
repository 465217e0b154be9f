"""Scale-out benchmark: one intake and 1, 2, 4 worker processes on one PostgreSQL, against the fakes.

    uv run python bench/scaleout.py                # 1, 2 and 4 workers, 200 jobs from 50 users (about 80 s)
    uv run python bench/scaleout.py --markdown     # the table as Markdown
    uv run python bench/scaleout.py --workers 1,2 --jobs 100 --refuse

Real processes, as they run in production: `python -m bot` with `WORKER_CONCURRENCY=0` (the intake: it takes the
updates and runs no job) and `python -m bot worker` (tests/fleet.py starts them). This process serves the fake
Bot API and the fake image API on 127.0.0.1: 2 s per image and, like a real gateway, at most `--key-limit` (32)
requests of one API key at once (over it they wait for a slot; `--refuse`: they get 429, retried by the bot).
`MAX_CONCURRENT_GENERATIONS` is high (64) so that the gateway, not the bot, is the limit at 4 workers; each worker
runs `--per-worker` (12) jobs at once.

PostgreSQL: a throwaway cluster from the machine's server binaries (or `--database-url`), a fresh database per row.

Columns: workers; jobs in flight the setup allows (min(workers × per-worker, cap, key limit)); images/s (delivered / wall);
wall (first /imagine sent → every job settled in the database, i.e. delivered or told why not; polled every
0.1 s); the ideal wall (⌈delivered / in flight⌉ rounds × 2 s) and ideal/measured wall; CPU s per image of the bot
processes (intake + workers, from /proc) and of this process (the fakes); 429 answers of the gateway; failed jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.imageapi import FakeImageAPI  # noqa: E402
from tests.fakes.telegram import FakeBotAPI  # noqa: E402
from tests.fleet import Fleet  # noqa: E402
from tests.postgres import Cluster, remove_cluster, start_cluster  # noqa: E402


@dataclass
class Row:
    workers: int
    slots: int
    jobs: int
    wall: float
    bot_cpu: float
    fakes_cpu: float
    refused: int
    failed: int
    delay: float
    peak_rss_mb: float = 0.0  # the largest high-water mark of any bot process (VmHWM)

    @property
    def rate(self) -> float:
        """Images delivered per second."""
        return (self.jobs - self.failed) / self.wall

    @property
    def ideal_wall(self) -> float:
        """The delivered images in rounds of `slots` at once, each round one upstream delay."""
        return math.ceil((self.jobs - self.failed) / self.slots) * self.delay

    @property
    def vs_ideal(self) -> float:
        return self.ideal_wall / self.wall


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _settled(database_url: str, jobs: int, timeout: float) -> tuple[float, int]:
    """Wait until all `jobs` are delivered or told why not (`settled`, written after the last Telegram call);
    the monotonic time that was seen (polled every 0.1 s) and how many failed."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        deadline = time.monotonic() + timeout
        while True:
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE settled = 2) AS settled, "
                "count(*) FILTER (WHERE status = 'failed') AS failed FROM jobs"
            )
            if row["settled"] >= jobs:
                return time.monotonic(), row["failed"]
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {row['settled']} of {jobs} jobs settled after {timeout:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


async def run_row(args: argparse.Namespace, database_url: str, workers: int, folder: Path) -> Row:
    async with FakeBotAPI() as tg, FakeImageAPI() as img:
        img.delay, img.key_limit, img.key_limit_refuses = args.delay, args.key_limit, args.refuse
        img.texture = args.size == "4K"  # photo-like grain: a 4K PNG of ~21 MB, previewed and sent as a file too
        fleet = Fleet(
            tg,
            img,
            folder,
            database_url,
            MAX_CONCURRENT_GENERATIONS=str(args.cap),
            USER_MAX_RUNNING="2",
            USER_MAX_WAITING=str(max(5, args.jobs // args.users)),
            TELEGRAM_MAX_MESSAGES_PER_SECOND=str(args.rate),
            TELEGRAM_RATE_SHARE=str(workers + 1),
            LOG_LEVEL="WARNING",
            MALLOC_ARENA_MAX="2",
            MALLOC_MMAP_THRESHOLD_="1048576",
        )
        try:
            processes = [await fleet.start(WORKER_CONCURRENCY="0", name="intake")]
            processes += await asyncio.gather(
                *(
                    fleet.start("worker", WORKER_CONCURRENCY=str(args.per_worker), name=f"worker-{n}")
                    for n in range(1, workers + 1)
                )
            )
            await tg.wait_for(lambda: tg.calls_of("getUpdates"), 20, "the intake to poll")
            people = [tg.user(700_000 + i, f"U{i}") for i in range(args.users)]
            chats = [tg.private_chat(user) for user in people]
            cpu_before = [p.cpu_seconds() for p in processes]
            self_before = _self_cpu()
            began = time.monotonic()
            for n in range(args.jobs):
                i = n % args.users
                tg.send_text(chats[i], people[i], f"/imagine scale-out {n} --ar 1:1 --size {args.size}")
            last, failed = await _settled(database_url, args.jobs, args.timeout)
            bot_cpu = sum(p.cpu_seconds() - before for p, before in zip(processes, cpu_before))
            peak = max(_peak_rss_mb(p.pid) for p in processes)
            fakes_cpu = _self_cpu() - self_before
        except BaseException:
            print(fleet.logs(), file=sys.stderr)
            raise
        finally:
            await fleet.stop()
        refused = sum(r.status == 429 for r in img.requests)
        slots = min(workers * args.per_worker, args.cap, args.key_limit)
        return Row(workers, slots, args.jobs, last - began, bot_cpu, fakes_cpu, refused, failed, args.delay, peak)


def table(rows: list[Row], markdown: bool) -> str:
    head = [
        "workers",
        "in flight",
        "N",
        "images/s",
        "wall",
        "ideal wall",
        "vs ideal",
        "CPU s/image bots",
        "CPU s/image fakes",
        "peak RSS MB (largest process)",
        "429s",
        "failed",
    ]
    lines = [
        [
            str(r.workers),
            str(r.slots),
            str(r.jobs),
            f"{r.rate:.1f}",
            f"{r.wall:.1f} s",
            f"{r.ideal_wall:.0f} s",
            f"{r.vs_ideal:.2f}",
            f"{r.bot_cpu / r.jobs * 1000:.0f} ms",
            f"{r.fakes_cpu / r.jobs * 1000:.0f} ms",
            f"{r.peak_rss_mb:.0f}",
            str(r.refused),
            str(r.failed),
        ]
        for r in rows
    ]
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "--:|" * len(head)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[k]) for line in lines)) for k, h in enumerate(head)]
    return "\n".join("  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in [head, *lines])


async def main(args: argparse.Namespace) -> None:
    if args.crowd:  # the deployed defaults under a crowd: the floor is ⌈200 / 8⌉ × 2 s = 50 s
        args.jobs, args.users, args.cap, args.delay, args.rate, args.per_worker = 200, 200, 8, 2.0, 30.0, 8
        args.workers = [2]
    if args.k4:  # all at once, nothing to wait for upstream: what the workers hold in memory
        args.jobs, args.users, args.cap, args.delay, args.size, args.per_worker = 20, 20, 20, 0.0, "4K", 10
        args.workers = [2]
    cluster: Cluster | None = None
    if args.database_url:
        cluster = Cluster(args.database_url)
    else:
        cluster, why = start_cluster(given=False)
        if cluster is None:
            sys.exit(f"scaleout: cannot start PostgreSQL: {why}; pass --database-url")
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="imagine-scaleout-") as tmp:
            for workers in args.workers:
                row = await run_row(args, cluster.new_database(), workers, Path(tmp) / f"w{workers}")
                print(f"{workers} worker(s): {row.rate:.1f} images/s, {row.wall:.1f} s", file=sys.stderr)
                rows.append(row)
    finally:
        if not args.database_url:
            remove_cluster(cluster)
    print(table(rows, args.markdown))


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds the fake image API takes per image")
    parser.add_argument("--key-limit", type=int, default=32, help="the gateway's requests at once per key")
    parser.add_argument("--refuse", action="store_true", help="over the key limit: 429 instead of waiting")
    parser.add_argument("--cap", type=int, default=64, help="MAX_CONCURRENT_GENERATIONS")
    parser.add_argument("--per-worker", type=int, default=12, help="WORKER_CONCURRENCY of each worker")
    parser.add_argument("--timeout", type=float, default=300.0, help="per row")
    parser.add_argument("--database-url", help="an existing PostgreSQL server (a database is made per row)")
    parser.add_argument("--size", choices=["1K", "4K"], default="1K", help="4K: ~21 MB PNGs (preview + file)")
    parser.add_argument("--rate", type=float, default=0, help="TELEGRAM_MAX_MESSAGES_PER_SECOND (0: off)")
    parser.add_argument(
        "--crowd",
        action="store_true",
        help="issue 15's crowd at the default settings: 200 users, cap 8, 30/s, 2 s, 2 workers",
    )
    parser.add_argument(
        "--4k",
        dest="k4",
        action="store_true",
        help="issue 15's memory row: 20 concurrent 4K jobs (0 s upstream) over 2 workers",
    )
    parser.add_argument("--markdown", action="store_true")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
