"""Every way a job can fail, in one table: the image client, the worker, the delivery, the CLI, the admins' alerts
and the texts all read it, so a new kind cannot be told in one place and missed in another.

A kind's name is stored in `jobs.error_kind` and names its texts: `error_<kind>` is the sentence its user gets,
`kind_<kind>` its short label in /stats and /history, `admin_alert_<kind>` what admins hear when it alerts;
tests/test_texts.py checks every language has them. Names never change: the database keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Failure:
    kind: str
    operator: str  # what failed, for someone at a shell (`imagine-bot generate`); `{url}` is the address asked
    retryable: bool = False  # the image client asks again, within its retry budget
    alert: bool = False  # it stops every user: the admins are told directly, at most once an hour


FAILURES: tuple[Failure, ...] = (
    # the image API's answers (bot/imagegen.py's error classes)
    Failure(
        "auth",
        "the image API refused IMAGE_API_KEY (a .cn key works only with the .cn gateway, a .com key with .com)",
        alert=True,
    ),
    Failure("quota", "the image API says the key's credit is used up", alert=True),
    Failure("prompt_too_long", "the image API says the prompt is too long"),
    Failure("invalid", "the image API refused the request as invalid"),
    Failure(
        "endpoint", "nothing answers image requests at {url}: set IMAGE_API_BASE_URL to the gateway's root", alert=True
    ),
    Failure("rate_limited", "the image API is rate limiting (still after the retries)", retryable=True),
    Failure("upstream", "the image API failed (still after the retries)", retryable=True),
    Failure("timeout", "the image API did not answer in time (IMAGE_REQUEST_TIMEOUT)", retryable=True),
    Failure("no_image", "the image API answered without an image (often its safety filter refusing the prompt)"),
    Failure("download", "the image was made but could not be downloaded"),
    Failure("not_image", "the image API answered with something that is not a PNG, JPEG or WEBP picture"),
    Failure(
        "too_many_pixels", "the image API answered with an image far larger than any size it offers (refused unopened)"
    ),
    Failure(
        "bad_answer", "the image API sent an answer no working service sends (too large, malformed, or a broken URL)"
    ),
    Failure("service", "the image API failed"),
    # our side
    Failure("internal", "the bot failed on its side"),
    Failure("storage", "no space left on the disk images are written to", alert=True),
    # the pictures of an edit (bot/references.py's UnusableReference, `reference_` + its kind)
    Failure("reference_too_big", "a reference picture is over the 20 MB a bot may download from Telegram"),
    Failure("reference_animated", "a reference picture is animated (a GIF or an animation)"),
    Failure("reference_not_image", "a reference is not a PNG, JPEG or WEBP picture"),
    Failure("reference_too_many_pixels", "a reference picture has far too many pixels"),
    Failure("reference_download", "a reference picture could not be downloaded from Telegram"),
    Failure("reference_gone", "a reference picture is no longer available"),
    # the end of a job
    Failure("telegram", "Telegram refused to take the image"),
    Failure("interrupted", "the job was interrupted by restarts more than once"),
)

KINDS: dict[str, Failure] = {failure.kind: failure for failure in FAILURES}
ADMIN_ALERTS = frozenset(failure.kind for failure in FAILURES if failure.alert)


def failure(kind: str | None) -> Failure:
    """A stored kind's row; one no longer in the table (or none) reads as the bot's own failure."""
    return KINDS.get(kind or "internal", KINDS["internal"])


def text_key(kind: str | None) -> str:
    """The key of the sentence a user gets for this failure."""
    return f"error_{failure(kind).kind}"


def label_key(kind: str | None) -> str:
    """The key of this failure's short label in /stats and /history (`kind_unknown` for a kind not in the table)."""
    return f"kind_{kind}" if kind in KINDS else "kind_unknown"
