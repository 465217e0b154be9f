"""Prometheus metrics: what an operator watches — jobs, queue, upstream latency, deliveries, Telegram, webhook.

Each running bot has its own `Metrics` (its own `CollectorRegistry`), bound with `bind()` for the tasks it starts,
so two bots in one process (tests, the benchmark) never count into each other and nothing lands in
prometheus-client's global registry. The functions below record into the bound one: a call site is one line and
needs no reference passed down. Outside a running bot (the `generate` CLI) they record into a spare that nobody
exports.
"""

from __future__ import annotations

from contextvars import ContextVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# From a 1K image in seconds to a 4K one near the 300 s read timeout.
UPSTREAM_BUCKETS = (1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600)


class Metrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self.jobs_finished = Counter(
            "imagine_jobs_finished",
            "Jobs that ended, by outcome and error kind",
            ["outcome", "error_kind"],
            registry=registry,
        )
        self.jobs_waiting = Gauge("imagine_jobs_waiting", "Jobs queued, not yet generating", registry=registry)
        self.jobs_running = Gauge("imagine_jobs_running", "Jobs generating now", registry=registry)
        self.upstream_seconds = Histogram(
            "imagine_upstream_seconds",
            "Image API time per image (retries included)",
            ["size"],
            buckets=UPSTREAM_BUCKETS,
            registry=registry,
        )
        self.deliveries = Counter(
            "imagine_deliveries",
            "Results delivered, by kind (photo, preview, document, …)",
            ["kind"],
            registry=registry,
        )
        self.size_mismatches = Counter(
            "imagine_size_mismatches", "Images whose size was not the one asked", ["size"], registry=registry
        )
        self.retry_after = Counter(
            "imagine_telegram_retry_after", "RetryAfter answers from the Bot API", registry=registry
        )
        self.retry_after_seconds = Counter(
            "imagine_telegram_retry_after_seconds", "Seconds the Bot API told us to wait", registry=registry
        )
        self.updates = Counter(
            "imagine_updates_received", "Telegram updates received, by type", ["type"], registry=registry
        )
        self.webhook_refused = Counter(
            "imagine_webhook_refused", "Webhook requests refused, by reason", ["reason"], registry=registry
        )
        self.webhook_duplicates = Counter(
            "imagine_webhook_duplicates",
            "Webhook updates acknowledged but ignored: their update_id was seen before",
            registry=registry,
        )

        self.stars_received = Counter(
            "imagine_stars_received", "Telegram Stars received for credit packs", registry=registry
        )
        self.stars_refunded = Counter("imagine_stars_refunded", "Telegram Stars refunded", registry=registry)
        self.credits_purchased = Counter(
            "imagine_credits_purchased", "Credits bought with Telegram Stars", registry=registry
        )
        self.prompt_helper_calls = Counter(
            "imagine_prompt_helper_calls",
            "Calls to the prompt helper's chat model, by purpose (improve, translate)",
            ["purpose"],
            registry=registry,
        )
        self.prompt_helper_failures = Counter(
            "imagine_prompt_helper_failures",
            "Prompt helper calls that gave no rewrite, by purpose and kind (timeout, error, refused, empty, …)",
            ["purpose", "kind"],
            registry=registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text format and its content type, for `GET /metrics`."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


# one fallback set for code that never bound its own (the CLI, a test of one module)
_current: ContextVar[Metrics] = ContextVar("metrics", default=Metrics())  # noqa: B039


def bind(metrics: Metrics) -> None:
    """Record into `metrics` from this task and every task it starts from now on."""
    _current.set(metrics)


def current() -> Metrics:
    return _current.get()


def job_finished(outcome: str, error_kind: str | None = None) -> None:
    _current.get().jobs_finished.labels(outcome=outcome, error_kind=error_kind or "").inc()


def jobs_in_queue(waiting: int, running: int) -> None:
    metrics = _current.get()
    metrics.jobs_waiting.set(waiting)
    metrics.jobs_running.set(running)


def upstream_latency(size: str, seconds: float) -> None:
    _current.get().upstream_seconds.labels(size=size.upper()).observe(seconds)


def delivered(kind: str) -> None:
    _current.get().deliveries.labels(kind=kind).inc()


def size_mismatch(size: str) -> None:
    _current.get().size_mismatches.labels(size=size.upper()).inc()


def retry_after(seconds: float) -> None:
    metrics = _current.get()
    metrics.retry_after.inc()
    metrics.retry_after_seconds.inc(seconds)


def update_received(kind: str) -> None:
    """Counted by its kind: `message`, `callback_query`, `channel_post`, … (the field Telegram filled)."""
    _current.get().updates.labels(type=kind).inc()


def purchased(stars: int, credits: int) -> None:
    """A payment credited (once per charge, by the process that recorded it)."""
    metrics = _current.get()
    metrics.stars_received.inc(stars)
    metrics.credits_purchased.inc(credits)


def refunded(stars: int) -> None:
    _current.get().stars_refunded.inc(stars)


def prompt_helper_call(purpose: str) -> None:
    _current.get().prompt_helper_calls.labels(purpose=purpose).inc()


def prompt_helper_failed(purpose: str, kind: str) -> None:
    _current.get().prompt_helper_failures.labels(purpose=purpose, kind=kind).inc()
