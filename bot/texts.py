"""Every sentence a user can see, per language. Handlers and services ask for a key; nothing else holds wording."""

from __future__ import annotations

EN: dict[str, str] = {
    "start": (
        "Hi! I turn a description into a picture.\n\n"
        "Send /imagine and what you want to see, for example:\n"
        "/imagine a red fox in fresh snow, golden hour\n\n"
        "Then pick the shape and the resolution and tap Generate. /help shows all options."
    ),
    "help": (
        "How to use me\n\n"
        "/imagine <description> — choose shape and resolution on the buttons, then Generate.\n"
        "Add options to skip the buttons:\n"
        "  --ar 16:9   shape: {ratios}\n"
        "  --size 2K   resolution: 1K, 2K or 4K (or just --2k)\n"
        "Example: /imagine a lighthouse at night --ar 9:16 --4k\n\n"
        "Reply /imagine to a message to use its text as the description.\n\n"
        "Under every picture: 🔁 Again makes another, 📐 Change picks new options, "
        "📄 Original sends the full-quality file. /cancel stops your running request."
    ),
    "usage": "Tell me what to draw, e.g. /imagine a red fox in fresh snow --ar 16:9",
    "prompt_too_long": "That description has {length:,} characters; the limit is {limit:,}. Please shorten it.",
    "bad_ratio": "I don't know the shape “{value}”. Use one of: {valid}.",
    "bad_size": "I don't know the resolution “{value}”. Use one of: {valid}.",
    "choose": "🎨 {prompt}\n\nShape and resolution, then Generate:",
    "generate": "✨ Generate",
    "cancel": "✖ Cancel",
    "cancelled_keyboard": "Cancelled. Send /imagine to start again.",
    "expired": "This request expired, send /imagine again.",
    "not_yours": "These buttons belong to someone else's request.",
    "already_started": "Already on it.",
    "queued": "⏳ Queued · {label}\n{prompt}",
    "queued_ahead": "⏳ Queued — {ahead} ahead of you · {label}\n{prompt}",
    "generating": "🎨 Generating {label}… {elapsed}\n{prompt}",
    "sending": "📤 Sending {label}…\n{prompt}",
    "cancelled": "✖ Cancelled · {label}\n{prompt}",
    "paused_restart": "⏸ The bot is restarting; your image continues as soon as it is back.\n{prompt}",
    "queue_full": "You already have {limit} images in progress; wait for one to finish or /cancel one.",
    "failed": "⚠️ {reason}\n{prompt}",
    "again": "🔁 Again",
    "change": "📐 Change",
    "original": "📄 Original",
    "cancel_job": "✖ Cancel",
    "cancel_done": "Cancelled.",
    "nothing_to_cancel": "You have nothing running.",
    "original_gone": "The original file is no longer kept; tap 🔁 Again to make a new one.",
    "original_sent": "Original sent as a file.",
    "busy_shutdown": "The bot is restarting; please send it again in a minute.",
    "size_mismatch": "asked {asked}, the service returned {width}×{height}",
    "original_too_big": "The original ({mb:.0f} MB) is larger than Telegram lets a bot send.",
    "internal": "Something went wrong on my side; please try again.",
    "prefs_title_user": "Your defaults for /imagine (flags like --ar 16:9 still win for one request):",
    "prefs_title_chat": "Defaults for /imagine in this chat (flags like --ar 16:9 still win for one request):",
    "prefs_original_on": "📄 Always send the original file: on",
    "prefs_original_off": "📄 Always send the original file: off",
    "prefs_done": "✓ Done",
    "prefs_saved": "Saved: {ratio} · {size}, original file {original}.",
    "prefs_admins_only": "Only the chat's admins can change its defaults.",
    "on": "on",
    "off": "off",
    "history_empty": "You have no images here yet. Try /imagine a red fox in fresh snow",
    "history_title": "Your last images here (📤 sends it again, 🔁 makes a new one):",
    "history_line": "{n}. {icon} {label} — {prompt}",
    "resend_gone": "That image is no longer stored; tap 🔁 to make it again.",
    # one sentence per failure kind (imagegen.ImageGenError.kind and delivery failures)
    "error_auth": "The bot's image API key was refused; please tell the bot's admin.",
    "error_quota": "The image service's credit is used up; please tell the bot's admin.",
    "error_prompt_too_long": "The image service says the description is too long; please shorten it.",
    "error_invalid": "The image service refused this request as invalid; try another description or option.",
    "error_rate_limited": "The image service is busy right now; please try again in a minute.",
    "error_upstream": "The image service had an error; please try again in a moment.",
    "error_timeout": "The image service took too long; try again, or a smaller resolution.",
    "error_no_image": "No image came back — the description may have been refused by the safety filter; rephrase it.",
    "error_download": "The image was made but could not be downloaded; please try again.",
    "error_not_image": "The service answered with something that is not an image; please try again.",
    "error_service": "The image service failed; please try again.",
    "error_telegram": "Telegram refused to take the image; please try again.",
    "error_interrupted": "This image was interrupted by a restart — tap 🔁 Again.",
}

TEXTS: dict[str, dict[str, str]] = {"en": EN}


def t(key: str, lang: str | None = None, **values: object) -> str:
    table = TEXTS.get((lang or "en")[:2], EN)
    template = table.get(key) or EN[key]
    return template.format(**values)
