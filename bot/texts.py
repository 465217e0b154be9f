"""Every sentence a user can see, in English, Simplified and Traditional Chinese. Handlers and services ask for a
key."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

LANGUAGES = {"en": "English", "zh": "简体中文", "zh-hant": "繁體中文"}
# Telegram's language_code is an IETF tag: zh-hant, zh-TW, zh-HK and zh-MO read Traditional characters.
_TRADITIONAL = {"hant", "tw", "hk", "mo"}

EN: dict[str, str] = {
    "start": (
        "Hi! I turn a description into a picture.\n\n"
        "Send /imagine and what you want to see, for example:\n"
        "/imagine a red fox in fresh snow, golden hour\n"
        "In this private chat you can also just send the description, without /imagine.\n\n"
        "Then pick the shape and the resolution and tap Generate. Send a photo with the caption /imagine … to edit "
        "it (🖼 Keep ratio keeps its shape); ⬆ under a picture makes it larger. /help shows all options.{quota_line}"
    ),
    "start_group": (
        "Hi, everyone! I turn a description into a picture. Send /imagine and what you want to see, for example:\n"
        "/imagine a red fox in fresh snow, golden hour\n\n"
        "Then pick the shape and the resolution and tap Generate; only the one who asked (or an admin) can press "
        "a request's buttons. Send a photo with the caption /imagine … to edit it. /help shows all options; "
        "your own credits are told in a private chat with me (/usage there)."
    ),
    "for_requester": "for {name}: {prompt}",
    "cancelled_by": "✖ {by} cancelled {name}'s request: {label} · {prompt}",
    "usage_group": "{name}, your own credits are told only in a private chat: send /usage to me there (@{bot}).",
    "help": (
        "How to use me\n\n"
        "/imagine <description> — pick the shape, resolution and how many on the buttons, then ✨ Generate. "
        "In a private chat plain text works too: any message you send is a description.\n"
        "Example: /imagine a lighthouse at night --ar 9:16 --4k\n\n"
        "Send a photo with the caption /imagine make it a watercolour to edit it (🖼 Keep ratio keeps its shape); "
        "⬆ under a picture makes it larger.\n\n"
        "More behind the buttons below.{quota_line}"
    ),
    "help_options": (
        "Options, anywhere in the description (they skip the buttons):\n"
        "  --ar 16:9 — shape: {ratios}\n"
        "  --size 2K — resolution: 1K, 2K or 4K (or just --2k)\n"
        "  --n 4 — four variants at once (1, 2 or 4)\n"
        "With both shape and resolution given, the image starts at once.\n"
        "Example: /imagine a lighthouse at night --ar 9:16 --4k"
    ),
    "help_edit": (
        "Editing and combining pictures: send a photo or an album with the caption /imagine make it a watercolour, "
        "or reply /imagine … to one (up to 14 pictures). 🖼 Keep ratio picks the shape closest to the first "
        "picture.\n\n"
        "Reply /imagine to any message to use its text as the description."
    ),
    "help_results": (
        "Under every picture: 🔁 Again makes another, 📐 Change picks new options, 📄 Original sends the "
        "full-quality file, ⬆ 2K / ⬆ 4K makes that very picture larger (under an album, ⬆ 1 · 4K … ⬆ 4 · 4K)."
    ),
    "help_commands": (
        "/cancel stops your newest image (/cancel all: every one)\n"
        "/history your images: send one again or make it anew\n"
        "/settings your defaults\n"
        "/usage credits left today\n"
        "/id your user id (and the chat's, in a group)"
    ),
    "help_options_button": "⚙️ Options",
    "help_edit_button": "🖌 Editing",
    "help_results_button": "🔁 Result buttons",
    "help_commands_button": "📋 Commands",
    "help_back": "◀ Back",
    "quota_line": "\n\nToday: {left} of {limit} credits left (1K = {c1}, 2K = {c2}, 4K = {c4}).",
    "usage": "Tell me what to draw, e.g. /imagine a red fox in fresh snow --ar 16:9",
    "prompt_too_long": "That description has {length:,} characters; the limit is {limit:,}. Please shorten it.",
    "bad_ratio": "I don't know the shape “{value}”. Use one of: {valid}.",
    "bad_size": "I don't know the resolution “{value}”. Use one of: {valid}.",
    "bad_variants": "I can make {valid} images at once, not “{value}”.",
    "choose": "🎨 {prompt}\n\nShape, resolution and how many (×1 ×2 ×4), then Generate:",
    "generate": "✨ Generate",
    "cancel": "✖ Cancel",
    "cancelled_keyboard": '✖ Cancelled.\n{prompt}',
    "expired": "This request expired, send /imagine again.",
    "gone_request": "This request was already sent or has expired; send /imagine for a new one.",
    "being_made": "This image is already being made; it arrives here when it is ready.",
    "not_yours": "These buttons belong to someone else's request.",
    "already_started": "Already on it.",
    "queued": "⏳ Queued · {label}\n{prompt}",
    "queued_ahead": "⏳ Queued — {ahead} ahead of you · {label}\n{prompt}",
    "queued_next": "⏳ Queued — you are next · {label}\n{prompt}",
    "generating": "🎨 Generating {label}…{elapsed}\n{prompt}",
    "editing": "🖌 Editing {label}…{elapsed}\n{prompt}",
    "upscaling": "⬆ Upscaling to {size}…{elapsed}\n{prompt}",
    "sending": "📤 Sending {label}…\n{prompt}",
    "seconds": "{seconds} s",
    "cancelled": "✖ Cancelled · {label}\n{prompt}",
    "done_line": "✅ Done · {label}",
    "paused_restart": "⏸ The bot is restarting; your image continues as soon as it is back.\n{prompt}",
    "queue_full": "You already have {limit} images in progress; wait for one to finish or /cancel one.",
    "quota_exceeded": (
        "Not enough credits: this needs {credits}, {left} left today. They reset {resets}.{hint}"
    ),
    "quota_hint_smaller": " Try a smaller size, or ask an admin.",
    "quota_hint_admin": " An admin can grant more.",
    "failed": "⚠️ {reason}\n{prompt}",
    "again": "🔁 Again",
    "change": "📐 Change",
    "original": "📄 Original",
    "cancel_job": "✖ Cancel",
    "cancel_done": "Cancelled.",
    "cancelled_one": "✖ Cancelled: {label} · {prompt}",
    "cancelled_many": "✖ Cancelled {count} requests.",
    "nothing_to_cancel": "You have nothing running.",
    "unknown_command": (
        "I don't know {command}. My commands: {commands}. Or just send a description, e.g. a red fox in fresh snow."
    ),
    "original_gone": "The original file is no longer kept; tap 🔁 Again to make a new one.",
    "original_sent": "Original sent as a file.",
    "busy_shutdown": "The bot is restarting; please send it again in a minute.",
    "size_mismatch": "asked {asked}, the service returned {actual}",
    "original_too_big": "The original ({mb:.0f} MB) is larger than Telegram lets a bot send.",
    "original_as_jpeg": "📄 The original is over the {limit} MB Telegram lets a bot send, so this is a "
                        "full-resolution JPEG of it.",
    "internal": "Something went wrong on my side; please try again.",
    "error_storage": "The bot's disk is full, so it cannot make new images right now; this one was not charged. "
                     "Please try again later.",
    "prefs_title_user": "Your defaults for /imagine. Every tap is saved at once; options like --ar 16:9 still win for "
                        "one request.",
    "prefs_title_chat": "Defaults for /imagine in this chat. Every tap is saved at once; options like --ar 16:9 still "
                        "win for one request.",
    "prefs_rows": "\n\nShape: {ratio}\nResolution: {size}\nHow many: ×{variants}\n📄 Original file with every image: {original}",
    "prefs_row_language": "\n🌐 Language: {language}",
    "prefs_language_app": "📱 App's",
    "prefs_language_app_value": "the app's ({name})",
    "prefs_original_on": "📄 Always original: on",
    "prefs_original_off": "📄 Always original: off",
    "prefs_saved": "Saved: {ratio} · {size} · ×{variants}, original file {original}.",
    "prefs_admins_only": "Only the chat's admins can change its defaults.",
    "on": "on",
    "off": "off",
    "history_empty": "You have no images here yet. Try /imagine a red fox in fresh snow",
    "history_made": "Your images here from the last {hours:g} h: {count}, page {page} of {pages}. 📤 sends one again, "
                    "🔁 makes it anew:",
    "history_none_made": "No images made here in the last {hours:g} h.",
    "history_not_made": "Not made here in the last {hours:g} h (failed or cancelled): {count}, page {page} of {pages}. "
                        "🔁 tries again:",
    "history_running": "In progress:",
    "history_line": "{n}. {icon} {label} — {prompt}",
    "history_line_not_made": "{n}. {icon} {label} — {prompt} ({why})",
    "history_running_line": "{icon} {label} — {prompt}",
    "history_edit": "edit",
    "history_upscale": "upscale",
    "history_cancelled": "cancelled",
    "history_not_made_button": "⚠️ Not made · {count}",
    "history_made_button": "✅ Images · {count}",
    "resend_gone": "That image is no longer stored; tap 🔁 to make it again.",
    "usage_report": "Today you used {used} of {limit} credits; {left} left.",
    "usage_granted": " (+{granted} granted today)",
    "usage_unlimited": "You have no daily limit. Used today: {used} credits.",
    "usage_chat": "\nThis chat: {used} of {limit} credits used.",
    "usage_costs": "\nCosts: 1K = {c1}, 2K = {c2}, 4K = {c4} credits. Credits reset {resets}.",
    "resets": "at {time} {tz} (in {hours} h {minutes} min)",
    "not_allowed": "Sorry, this bot is private. Ask its owner to add your user id: {user_id}",
    "id_user": "Your user id: {user_id}",
    "id_user_group": "{name}'s user id: {user_id}",
    "id_chat": "This chat's id: {chat_id}",
    "blocked": "You can't use this bot any more.",
    "admins_only_cmd": "This command is for the bot's admins.",
    "grant_usage": "Use: /grant <user id> <credits>",
    "grant_done": "Granted {credits} credits to {user_id} for today.",
    "block_usage": "Use: /block <user id> (or /unblock <user id>)",
    "block_done": "User {user_id} is blocked.",
    "unblock_done": "User {user_id} is unblocked.",
    "stats": (
        "📊 Images today: {today} ({today_sizes})\n"
        "Last 7 days: {week} ({week_sizes})\n"
        "Failures (7 days): {failures}\n"
        "Size mismatches (7 days): {mismatches}\n"
        "Top users (7 days): {top}\n"
        "Generation time (7 days): median {median}, p95 {p95}"
    ),
    "none": "none",
    # one sentence per failure kind (imagegen.ImageGenError.kind and delivery failures)
    "error_auth": "The bot's image API key was refused; please tell the bot's admin.",
    "error_quota": "The image service's credit is used up; please tell the bot's admin.",
    "error_prompt_too_long": "The image service says the description is too long; please shorten it.",
    "error_invalid": "The image service refused this request as invalid; try another description or option.",
    "error_endpoint": "The bot is set up with a wrong image service address; please tell the bot's admin.",
    "error_rate_limited": "The image service is busy right now; please try again in a minute.",
    "error_upstream": "The image service is busy or unavailable right now; please try again in a moment.",
    "error_timeout": "The image service took too long to answer; please try again.",
    "error_no_image": "No image came back — the description may have been refused by the safety filter; rephrase it.",
    "error_download": "The image was made but could not be downloaded; please try again.",
    "error_not_image": "The service answered with something that is not an image; please try again.",
    "error_bad_answer": "The image service sent a broken answer, so no image came of it; please try again.",
    "error_too_many_pixels": (
        "The service sent an image far larger than any size it offers; it was refused unopened. Please try again."
    ),
    "error_service": "The image service failed; please try again.",
    "error_telegram": "Telegram refused to take the image; please try again.",
    "error_interrupted": "This image was interrupted by a restart — tap 🔁 Again.",
    "error_reference_too_big": (
        "Reference image {number} ({name}) is larger than 20 MB, the most Telegram lets a bot download; "
        "send it smaller or as a compressed photo."
    ),
    "error_reference_not_image": "Reference {number} ({name}) is not a picture; send PNG, JPEG or WEBP images.",
    "error_reference_too_many_pixels": (
        "Reference image {number} ({name}) has far too many pixels (more than about 34 megapixels); send it smaller."
    ),
    "error_reference_download": "Reference image {number} could not be downloaded from Telegram; please send it again.",
    "error_reference_gone": "A reference image is no longer available; please send it again.",
    "refs_received": '📥 Pictures received: {count} (up to {limit} can be used)…',
    "variants_failed": "{failed} of {total} failed: {reason}",
    "variants_ready": "{ready} of {total} ready",
    "refs_trimmed": "You sent {count} images; I used the first {limit}.",
    "edit_choose": "🖌 {prompt}\n\nEditing {images}. Shape, resolution and how many (×1 ×2 ×4), then Generate:",
    "images_one": "1 image",
    "images_many": "{count} images",
    "keep_ratio": "🖼 Keep ratio",
    "admin_alert_auth": "⚠️ Admin: the image API refused the bot's key (HTTP 401). Check IMAGE_API_KEY and "
    "IMAGE_API_BASE_URL (a .cn key works only with the .cn gateway).",
    "admin_alert_quota": "⚠️ Admin: the image API says the key's credit is used up (HTTP 403). Top it up at DMXAPI.",
    "admin_alert_endpoint": "⚠️ Admin: nothing answers image requests at IMAGE_API_BASE_URL (HTTP 404/405). "
    "Use the gateway's root, e.g. https://www.dmxapi.cn.",
    "admin_alert_storage": "⚠️ Admin: the disk of DATA_DIR is full: images fail even after every original that could "
    "give way was deleted. Free some space, or lower DATA_MIN_FREE_MB.",
    # the command menu
    "cmd_imagine": "Make an image: /imagine a red fox --ar 16:9",
    "cmd_help": "How to use the bot",
    "cmd_cancel": "Stop your running image (/cancel all: every one)",
    "cmd_settings": "Default shape, resolution, original file",
    "cmd_history": "Your last images: send again or redo",
    "cmd_usage": "Credits left today",
    "cmd_start": "Start",
    "cmd_id": "Your user id (and this chat's)",
    # /stats: what each failure was, in the words of the sentence its user got
    "kind_auth": "API key refused",
    "kind_quota": "API credit used up",
    "kind_prompt_too_long": "prompt too long",
    "kind_invalid": "refused as invalid",
    "kind_endpoint": "wrong API address",
    "kind_rate_limited": "service busy (rate limited)",
    "kind_upstream": "service busy or unavailable",
    "kind_timeout": "took too long",
    "kind_no_image": "no image (safety filter?)",
    "kind_download": "could not download the image",
    "kind_not_image": "answer was not an image",
    "kind_service": "service failed",
    "kind_telegram": "Telegram refused the image",
    "kind_interrupted": "interrupted by a restart",
    "kind_reference_too_big": "reference image over 20 MB",
    "kind_reference_not_image": "reference was not a picture",
    "kind_reference_download": "reference image could not be downloaded",
    "kind_reference_gone": "reference image no longer available",
    "kind_internal": "bot error",
    "kind_storage": "could not store the image (disk)",
    "kind_unknown": "unknown",
    "list_sep": ", ",
    "list_last": " or ",
    "start_again": '↩ Start again',
    "drop_pictures": '🆕 Without the picture — a new image',
    "unknown_flags": 'Not options here: {flags} (left out of the description).',
    "picture_waiting": '🖼 Got the picture. Now send what to do with it, e.g. “make it a watercolour”, or /imagine … for a new image.',
    "pictures_waiting": '🖼 Got the pictures. Now send what to do with them, e.g. “put them together on one poster”, or /imagine … for a new image.',
    "error_reference_animated": 'Picture {number} ({name}) moves (a GIF or animation); send a still picture: PNG, JPEG or WEBP.',
    "media_unusable": "I can't use {what}. Send a description to make a picture, or a photo to edit.",
    "media_animation": 'GIFs or animations',
    "media_sticker": 'stickers',
    "media_video": 'videos',
    "media_video_note": 'video messages',
    "media_voice": 'voice messages',
    "media_audio": 'audio files',
    "media_location": 'locations',
    "media_venue": 'places',
    "media_contact": 'contacts',
    "media_poll": 'polls',
    "media_dice": 'dice',
    "media_game": 'games',
    "media_story": 'stories',
    "media_file": 'this file ({name}): it is not a picture (PNG, JPEG or WEBP)',
    "original_file": '📄 Original file · {details}',
    "quota_exceeded_group": "{name}, that needs {credits} credits and you don't have enough left today.{hint} Send /usage to me in a private chat to see yours.",
}

ZH: dict[str, str] = {
    "start": (
        "你好！我可以把文字描述变成图片。\n\n"
        "发送 /imagine 加上你想看到的画面，例如：\n"
        "/imagine 雪地里的一只红狐狸，黄金时刻\n"
        "在私聊中也可以直接发送描述，不必加 /imagine。\n\n"
        "然后选择画面比例和分辨率，点“生成”。发送照片并附上说明 /imagine … 即可编辑它（🖼 保持原比例 保留其形状）；"
        "图片下方的 ⬆ 可放大该图。/help 查看全部选项。{quota_line}"
    ),
    "start_group": (
        "大家好！我可以把文字描述变成图片。发送 /imagine 加上你想看到的画面，例如：\n"
        "/imagine 雪地里的一只红狐狸，黄金时刻\n\n"
        "然后选择比例和分辨率，点“生成”；请求的按钮只有发起人（或管理员）能按。发送照片并附上说明 /imagine … 即可编辑它。"
        "/help 查看全部选项；个人额度只在与我的私聊中显示（在私聊中发送 /usage）。"
    ),
    "for_requester": "{name} 的请求：{prompt}",
    "cancelled_by": "✖ {by} 取消了 {name} 的请求：{label} · {prompt}",
    "usage_group": "{name}，个人额度只在私聊中显示：请在与我（@{bot}）的私聊中发送 /usage。",
    "help": (
        "使用方法\n\n"
        "/imagine <描述> — 在按钮上选择比例、分辨率和张数，然后点 ✨ 生成。在私聊中直接发送文字也可以：每条消息都会作为描述。\n"
        "例如：/imagine 夜晚的灯塔 --ar 9:16 --4k\n\n"
        "发送照片并附上说明 /imagine 改成水彩画 即可编辑它（🖼 保持原比例 保留其形状）；图片下方的 ⬆ 可放大该图。\n\n"
        "更多说明请点下方按钮。{quota_line}"
    ),
    "help_options": (
        "参数，可写在描述中任意位置（跳过按钮）：\n"
        "  --ar 16:9 — 比例：{ratios}\n"
        "  --size 2K — 分辨率：1K、2K 或 4K（也可写 --2k）\n"
        "  --n 4 — 一次生成 4 张变体（1、2 或 4）\n"
        "同时给出比例和分辨率时，立即开始生成。\n"
        "例如：/imagine 夜晚的灯塔 --ar 9:16 --4k"
    ),
    "help_edit": (
        "编辑与合成图片：发送照片或相册并附上说明 /imagine 改成水彩画，或回复照片 /imagine …（最多 14 张）。"
        "🖼 保持原比例 会选择最接近第一张图的比例。\n\n"
        "回复某条消息并发送 /imagine，即以该消息的文字作为描述。"
    ),
    "help_results": (
        "每张图下方：🔁 再来一张，📐 修改选项，📄 原图发送高清原文件，⬆ 2K / ⬆ 4K 把这张图放大重绘"
        "（相册下方为 ⬆ 1 · 4K … ⬆ 4 · 4K）。"
    ),
    "help_commands": (
        "/cancel 停止最新的图片（/cancel all：全部）\n"
        "/history 你的图片：再次发送或重新生成\n"
        "/settings 默认设置\n"
        "/usage 今日剩余额度\n"
        "/id 你的用户 id（在群里还有本群的 id）"
    ),
    "help_options_button": "⚙️ 参数",
    "help_edit_button": "🖌 编辑图片",
    "help_results_button": "🔁 图片下的按钮",
    "help_commands_button": "📋 命令",
    "help_back": "◀ 返回",
    "quota_line": "\n\n今日剩余 {left} / {limit} 点额度（1K = {c1}，2K = {c2}，4K = {c4}）。",
    "usage": "请告诉我要画什么，例如：/imagine 雪地里的一只红狐狸 --ar 16:9",
    "prompt_too_long": "描述共有 {length:,} 个字符，上限为 {limit:,}。请缩短后再试。",
    "bad_ratio": "不支持比例“{value}”。可用的比例：{valid}。",
    "bad_size": "不支持分辨率“{value}”。可用的分辨率：{valid}。",
    "bad_variants": "一次可以生成 {valid} 张图片，不支持“{value}”。",
    "choose": "🎨 {prompt}\n\n选择比例、分辨率和张数（×1 ×2 ×4），然后点“生成”：",
    "generate": "✨ 生成",
    "cancel": "✖ 取消",
    "cancelled_keyboard": '✖ 已取消。\n{prompt}',
    "expired": "该请求已过期，请重新发送 /imagine。",
    "gone_request": "该请求已经发送或已过期，请重新发送 /imagine。",
    "being_made": "这张图片正在生成中，完成后会发到这里。",
    "not_yours": "这些按钮属于别人的请求。",
    "already_started": "已经在处理了。",
    "queued": "⏳ 排队中 · {label}\n{prompt}",
    "queued_ahead": "⏳ 排队中 — 前面还有 {ahead} 个 · {label}\n{prompt}",
    "queued_next": "⏳ 排队中 — 下一个就轮到你 · {label}\n{prompt}",
    "generating": "🎨 正在生成 {label}…{elapsed}\n{prompt}",
    "editing": "🖌 正在编辑 {label}…{elapsed}\n{prompt}",
    "upscaling": "⬆ 正在放大到 {size}…{elapsed}\n{prompt}",
    "sending": "📤 正在发送 {label}…\n{prompt}",
    "seconds": "{seconds} 秒",
    "cancelled": "✖ 已取消 · {label}\n{prompt}",
    "done_line": "✅ 已完成 · {label}",
    "paused_restart": "⏸ 机器人正在重启，恢复后会继续生成你的图片。\n{prompt}",
    "queue_full": "你已有 {limit} 张图片在处理中；请等待完成，或用 /cancel 取消一张。",
    "quota_exceeded": "额度不足：本次需要 {credits} 点，今日剩余 {left} 点。额度将于{resets}重置。{hint}",
    "quota_hint_smaller": "可以换小一点的分辨率，或联系管理员。",
    "quota_hint_admin": "管理员可以增加额度。",
    "failed": "⚠️ {reason}\n{prompt}",
    "again": "🔁 再来一张",
    "change": "📐 修改",
    "original": "📄 原图",
    "cancel_job": "✖ 取消",
    "cancel_done": "已取消。",
    "cancelled_one": "✖ 已取消：{label} · {prompt}",
    "cancelled_many": "✖ 已取消 {count} 个请求。",
    "nothing_to_cancel": "你没有正在进行的任务。",
    "unknown_command": "我不认识 {command}。可用命令：{commands}。也可以直接发送描述，例如：雪地里的一只红狐狸",
    "original_gone": "原图已不再保存；点 🔁 再来一张 重新生成。",
    "original_sent": "原图已作为文件发送。",
    "busy_shutdown": "机器人正在重启，请一分钟后再发送。",
    "size_mismatch": "请求 {asked}，服务返回 {actual}",
    "original_too_big": "原图（{mb:.0f} MB）超过了 Telegram 允许机器人发送的大小。",
    "original_as_jpeg": "📄 原图超过了 Telegram 允许机器人发送的 {limit} MB，因此这里发送的是全分辨率的 JPEG。",
    "internal": "我这边出了点问题，请再试一次。",
    "error_storage": "机器人的磁盘已满，暂时无法生成新图片；本次不扣额度。请稍后再试。",
    "prefs_title_user": "你的 /imagine 默认设置。每次点按都会立即保存；--ar 16:9 等参数仍可单次覆盖。",
    "prefs_title_chat": "本群 /imagine 的默认设置。每次点按都会立即保存；--ar 16:9 等参数仍可单次覆盖。",
    "prefs_rows": "\n\n比例：{ratio}\n分辨率：{size}\n张数：×{variants}\n📄 每张图附原图文件：{original}",
    "prefs_row_language": "\n🌐 语言：{language}",
    "prefs_language_app": "📱 跟随应用",
    "prefs_language_app_value": "跟随应用（{name}）",
    "prefs_original_on": "📄 总附原图：开",
    "prefs_original_off": "📄 总附原图：关",
    "prefs_saved": "已保存：{ratio} · {size} · ×{variants}，原图文件{original}。",
    "prefs_admins_only": "只有本群管理员可以修改默认设置。",
    "on": "开",
    "off": "关",
    "history_empty": "你在这里还没有图片。试试 /imagine 雪地里的一只红狐狸",
    "history_made": "你在这里最近 {hours:g} 小时的图片：{count} 个，第 {page} / {pages} 页。📤 再次发送，🔁 重新生成：",
    "history_none_made": "最近 {hours:g} 小时你在这里没有生成图片。",
    "history_not_made": "最近 {hours:g} 小时在这里未生成的（失败或已取消）：{count} 个，第 {page} / {pages} 页。🔁 再试一次：",
    "history_running": "进行中：",
    "history_line": "{n}. {icon} {label} — {prompt}",
    "history_line_not_made": "{n}. {icon} {label} — {prompt}（{why}）",
    "history_running_line": "{icon} {label} — {prompt}",
    "history_edit": "编辑",
    "history_upscale": "放大",
    "history_cancelled": "已取消",
    "history_not_made_button": "⚠️ 未生成 · {count}",
    "history_made_button": "✅ 图片 · {count}",
    "resend_gone": "这张图片已不再保存；点 🔁 重新生成。",
    "usage_report": "今日已用 {used} / {limit} 点额度，剩余 {left} 点。",
    "usage_granted": "（今日另获赠 {granted} 点）",
    "usage_unlimited": "你没有每日上限。今日已用 {used} 点。",
    "usage_chat": "\n本群：已用 {used} / {limit} 点。",
    "usage_costs": "\n消耗：1K = {c1}，2K = {c2}，4K = {c4} 点。额度将于{resets}重置。",
    "resets": " {time}（{tz}，{hours} 小时 {minutes} 分钟后）",
    "not_allowed": "抱歉，这是一个私人机器人。请联系机器人主人，让其添加你的用户 id：{user_id}",
    "id_user": "你的用户 id：{user_id}",
    "id_user_group": "{name} 的用户 id：{user_id}",
    "id_chat": "本群的 id：{chat_id}",
    "blocked": "你已无法使用此机器人。",
    "admins_only_cmd": "此命令仅限机器人管理员使用。",
    "grant_usage": "用法：/grant <用户 id> <点数>",
    "grant_done": "已为 {user_id} 增加今日额度 {credits} 点。",
    "block_usage": "用法：/block <用户 id>（或 /unblock <用户 id>）",
    "block_done": "已封禁用户 {user_id}。",
    "unblock_done": "已解封用户 {user_id}。",
    "stats": (
        "📊 今日图片：{today}（{today_sizes}）\n"
        "最近 7 天：{week}（{week_sizes}）\n"
        "失败（7 天）：{failures}\n"
        "尺寸不符（7 天）：{mismatches}\n"
        "活跃用户（7 天）：{top}\n"
        "生成耗时（7 天）：中位数 {median}，p95 {p95}"
    ),
    "none": "无",
    "error_auth": "机器人的图片 API 密钥被拒绝，请告知机器人管理员。",
    "error_quota": "图片服务的额度已用完，请告知机器人管理员。",
    "error_prompt_too_long": "图片服务提示描述过长，请缩短后再试。",
    "error_invalid": "图片服务认为该请求无效；请换一个描述或选项。",
    "error_endpoint": "机器人配置的图片服务地址有误，请告知机器人管理员。",
    "error_rate_limited": "图片服务当前繁忙，请一分钟后再试。",
    "error_upstream": "图片服务繁忙或暂时不可用，请稍后再试。",
    "error_timeout": "图片服务响应超时，请再试一次。",
    "error_no_image": "没有返回图片——描述可能被安全过滤拦截了，请换个说法。",
    "error_download": "图片已生成但无法下载，请再试一次。",
    "error_not_image": "服务返回的内容不是图片，请再试一次。",
    "error_bad_answer": "图片服务返回了损坏的应答，没有得到图片，请再试一次。",
    "error_too_many_pixels": "服务返回的图片远大于它提供的任何尺寸，已直接拒收。请再试一次。",
    "error_service": "图片服务失败了，请再试一次。",
    "error_telegram": "Telegram 拒绝接收这张图片，请再试一次。",
    "error_interrupted": "这张图片因重启而中断——请点 🔁 再来一张。",
    "error_reference_too_big": "参考图 {number}（{name}）超过 20 MB，超出 Telegram 允许机器人下载的大小；请发送更小的图片或以压缩照片发送。",
    "error_reference_not_image": "参考文件 {number}（{name}）不是图片；请发送 PNG、JPEG 或 WEBP 图片。",
    "error_reference_too_many_pixels": "参考图 {number}（{name}）像素过多（超过约 3400 万像素），请发送更小的图片。",
    "error_reference_download": "无法从 Telegram 下载参考图 {number}，请重新发送。",
    "error_reference_gone": "参考图已不可用，请重新发送。",
    "refs_received": '📥 已收到 {count} 张图片（最多可用 {limit} 张）…',
    "variants_failed": "{total} 张中有 {failed} 张失败：{reason}",
    "variants_ready": "已完成 {ready} / {total}",
    "refs_trimmed": "你发送了 {count} 张图片，我使用了前 {limit} 张。",
    "edit_choose": "🖌 {prompt}\n\n编辑 {images}。选择比例、分辨率和张数（×1 ×2 ×4），然后点“生成”：",
    "images_one": "1 张图片",
    "images_many": "{count} 张图片",
    "keep_ratio": "🖼 保持原比例",
    "admin_alert_auth": "⚠️ 管理员：图片 API 拒绝了机器人的密钥（HTTP 401）。请检查 IMAGE_API_KEY 和 "
    "IMAGE_API_BASE_URL（.cn 的密钥只能用于 .cn 网关）。",
    "admin_alert_quota": "⚠️ 管理员：图片 API 提示该密钥的额度已用完（HTTP 403）。请到 DMXAPI 充值。",
    "admin_alert_endpoint": "⚠️ 管理员：IMAGE_API_BASE_URL 地址上没有图片接口（HTTP 404/405）。请填写网关根地址，例如 https://www.dmxapi.cn。",
    "admin_alert_storage": "⚠️ 管理员：DATA_DIR 所在磁盘已满，删除了所有可删的原图后仍无法生成图片。请腾出空间，或调低 DATA_MIN_FREE_MB。",
    "cmd_imagine": "生成图片：/imagine 红狐狸 --ar 16:9",
    "cmd_help": "使用说明",
    "cmd_cancel": "停止正在生成的图片（/cancel all：全部）",
    "cmd_settings": "默认比例、分辨率、原图文件",
    "cmd_history": "最近的图片：再次发送或重新生成",
    "cmd_usage": "今日剩余额度",
    "cmd_start": "开始",
    "cmd_id": "你的用户 id（及本群的 id）",
    "kind_auth": "API 密钥被拒绝",
    "kind_quota": "API 额度已用完",
    "kind_prompt_too_long": "描述过长",
    "kind_invalid": "请求被判为无效",
    "kind_endpoint": "API 地址有误",
    "kind_rate_limited": "服务繁忙（限流）",
    "kind_upstream": "服务繁忙或不可用",
    "kind_timeout": "响应超时",
    "kind_no_image": "没有返回图片（安全过滤？）",
    "kind_download": "图片无法下载",
    "kind_not_image": "返回的不是图片",
    "kind_service": "服务失败",
    "kind_telegram": "Telegram 拒绝接收图片",
    "kind_interrupted": "因重启中断",
    "kind_reference_too_big": "参考图超过 20 MB",
    "kind_reference_not_image": "参考文件不是图片",
    "kind_reference_download": "参考图无法下载",
    "kind_reference_gone": "参考图已不可用",
    "kind_internal": "机器人内部错误",
    "kind_storage": "无法保存图片（磁盘）",
    "kind_unknown": "未知",
    "list_sep": "、",
    "list_last": " 或 ",
    "start_again": '↩ 重新开始',
    "drop_pictures": '🆕 不用这张图，生成新图',
    "unknown_flags": '这些不是本机器人的选项：{flags}（已从描述中去掉）。',
    "picture_waiting": '🖼 收到图片。现在发送要对它做什么，例如“改成水彩画”；或发送 /imagine … 生成新图。',
    "pictures_waiting": '🖼 收到这些图片。现在发送要对它们做什么，例如“把它们放在一张海报上”；或发送 /imagine … 生成新图。',
    "error_reference_animated": '图片 {number}（{name}）是动图（GIF 或动画）；请发送静态图片：PNG、JPEG 或 WEBP。',
    "media_unusable": '我无法使用{what}。发送描述来生成图片，或发送照片来编辑。',
    "media_animation": 'GIF 或动图',
    "media_sticker": '贴纸',
    "media_video": '视频',
    "media_video_note": '视频消息',
    "media_voice": '语音消息',
    "media_audio": '音频文件',
    "media_location": '位置',
    "media_venue": '地点',
    "media_contact": '联系人',
    "media_poll": '投票',
    "media_dice": '骰子',
    "media_game": '游戏',
    "media_story": '快拍',
    "media_file": '这个文件（{name}）：它不是图片（PNG、JPEG 或 WEBP）',
    "original_file": '📄 原图文件 · {details}',
    "quota_exceeded_group": '{name}，本次需要 {credits} 点，你今日的额度不够了。{hint}在私聊中向我发送 /usage 可查看你的额度。',
}

ZH_HANT: dict[str, str] = {
    "start": (
        "你好！我可以把文字描述變成圖片。\n"
        "\n"
        "傳送 /imagine 加上你想看到的畫面，例如：\n"
        "/imagine 雪地裡的一隻紅狐狸，黃金時刻\n"
        "在私訊中也可以直接傳送描述，不必加 /imagine。\n"
        "\n"
        "然後選擇畫面比例和解析度，點「生成」。傳送照片並附上說明 /imagine … 即可編輯它（🖼 保持原比例 保留其形狀）；圖片下方的 ⬆ 可放大該圖。/help 檢視全部選項。{quota_line}"
    ),
    "start_group": (
        "大家好！我可以把文字描述變成圖片。傳送 /imagine 加上你想看到的畫面，例如：\n"
        "/imagine 雪地裡的一隻紅狐狸，黃金時刻\n\n"
        "然後選擇比例和解析度，點「生成」；請求的按鈕只有發起人（或管理員）能按。傳送照片並附上說明 /imagine … 即可編輯它。"
        "/help 檢視全部選項；個人額度只在與我的私訊中顯示（在私訊中傳送 /usage）。"
    ),
    "for_requester": "{name} 的請求：{prompt}",
    "cancelled_by": "✖ {by} 取消了 {name} 的請求：{label} · {prompt}",
    "usage_group": "{name}，個人額度只在私訊中顯示：請在與我（@{bot}）的私訊中傳送 /usage。",
    "help": (
        "使用方法\n\n"
        "/imagine <描述> — 在按鈕上選擇比例、解析度和張數，然後點 ✨ 生成。在私訊中直接傳送文字也可以：每條訊息都會作為描述。\n"
        "例如：/imagine 夜晚的燈塔 --ar 9:16 --4k\n\n"
        "傳送照片並附上說明 /imagine 改成水彩畫 即可編輯它（🖼 保持原比例 保留其形狀）；圖片下方的 ⬆ 可放大該圖。\n\n"
        "更多說明請點下方按鈕。{quota_line}"
    ),
    "help_options": (
        "參數，可寫在描述中任意位置（跳過按鈕）：\n"
        "  --ar 16:9 — 比例：{ratios}\n"
        "  --size 2K — 解析度：1K、2K 或 4K（也可寫 --2k）\n"
        "  --n 4 — 一次生成 4 張變體（1、2 或 4）\n"
        "同時給出比例和解析度時，立即開始生成。\n"
        "例如：/imagine 夜晚的燈塔 --ar 9:16 --4k"
    ),
    "help_edit": (
        "編輯與合成圖片：傳送照片或相簿並附上說明 /imagine 改成水彩畫，或回覆照片 /imagine …（最多 14 張）。"
        "🖼 保持原比例 會選擇最接近第一張圖的比例。\n\n"
        "回覆某條訊息並傳送 /imagine，即以該訊息的文字作為描述。"
    ),
    "help_results": (
        "每張圖下方：🔁 再來一張，📐 修改選項，📄 原圖傳送高畫質原檔案，⬆ 2K / ⬆ 4K 把這張圖放大重繪"
        "（相簿下方為 ⬆ 1 · 4K … ⬆ 4 · 4K）。"
    ),
    "help_commands": (
        "/cancel 停止最新的圖片（/cancel all：全部）\n"
        "/history 你的圖片：再次傳送或重新生成\n"
        "/settings 預設設定\n"
        "/usage 今日剩餘額度\n"
        "/id 你的使用者 id（在群裡還有本群的 id）"
    ),
    "help_options_button": "⚙️ 參數",
    "help_edit_button": "🖌 編輯圖片",
    "help_results_button": "🔁 圖片下的按鈕",
    "help_commands_button": "📋 指令",
    "help_back": "◀ 返回",
    "quota_line": "\n\n今日剩餘 {left} / {limit} 點額度（1K = {c1}，2K = {c2}，4K = {c4}）。",
    "usage": "請告訴我要畫什麼，例如：/imagine 雪地裡的一隻紅狐狸 --ar 16:9",
    "prompt_too_long": "描述共有 {length:,} 個字元，上限為 {limit:,}。請縮短後再試。",
    "bad_ratio": "不支援比例「{value}」。可用的比例：{valid}。",
    "bad_size": "不支援解析度「{value}」。可用的解析度：{valid}。",
    "bad_variants": "一次可以生成 {valid} 張圖片，不支援「{value}」。",
    "choose": "🎨 {prompt}\n\n選擇比例、解析度和張數（×1 ×2 ×4），然後點「生成」：",
    "generate": "✨ 生成",
    "cancel": "✖ 取消",
    "cancelled_keyboard": '✖ 已取消。\n{prompt}',
    "expired": "該請求已過期，請重新傳送 /imagine。",
    "gone_request": "該請求已經送出或已過期，請重新傳送 /imagine。",
    "being_made": "這張圖片正在生成中，完成後會發到這裡。",
    "not_yours": "這些按鈕屬於別人的請求。",
    "already_started": "已經在處理了。",
    "queued": "⏳ 排隊中 · {label}\n{prompt}",
    "queued_ahead": "⏳ 排隊中 — 前面還有 {ahead} 個 · {label}\n{prompt}",
    "queued_next": "⏳ 排隊中 — 下一個就輪到你 · {label}\n{prompt}",
    "generating": "🎨 正在生成 {label}…{elapsed}\n{prompt}",
    "editing": "🖌 正在編輯 {label}…{elapsed}\n{prompt}",
    "upscaling": "⬆ 正在放大到 {size}…{elapsed}\n{prompt}",
    "sending": "📤 正在傳送 {label}…\n{prompt}",
    "seconds": "{seconds} 秒",
    "cancelled": "✖ 已取消 · {label}\n{prompt}",
    "done_line": "✅ 已完成 · {label}",
    "paused_restart": "⏸ 機器人正在重啟，恢復後會繼續生成你的圖片。\n{prompt}",
    "queue_full": "你已有 {limit} 張圖片在處理中；請等待完成，或用 /cancel 取消一張。",
    "quota_exceeded": "額度不足：本次需要 {credits} 點，今日剩餘 {left} 點。額度將於{resets}重置。{hint}",
    "quota_hint_smaller": "可以換小一點的解析度，或聯絡管理員。",
    "quota_hint_admin": "管理員可以增加額度。",
    "failed": "⚠️ {reason}\n{prompt}",
    "again": "🔁 再來一張",
    "change": "📐 修改",
    "original": "📄 原圖",
    "cancel_job": "✖ 取消",
    "cancel_done": "已取消。",
    "cancelled_one": "✖ 已取消：{label} · {prompt}",
    "cancelled_many": "✖ 已取消 {count} 個請求。",
    "nothing_to_cancel": "你沒有正在進行的任務。",
    "unknown_command": "我不認識 {command}。可用指令：{commands}。也可以直接傳送描述，例如：雪地裡的一隻紅狐狸",
    "original_gone": "原圖已不再儲存；點 🔁 再來一張 重新生成。",
    "original_sent": "原圖已作為檔案傳送。",
    "busy_shutdown": "機器人正在重啟，請一分鐘後再傳送。",
    "size_mismatch": "請求 {asked}，服務回傳 {actual}",
    "original_too_big": "原圖（{mb:.0f} MB）超過了 Telegram 允許機器人傳送的大小。",
    "original_as_jpeg": "📄 原圖超過了 Telegram 允許機器人傳送的 {limit} MB，因此這裡傳送的是全解析度的 JPEG。",
    "internal": "我這邊出了點問題，請再試一次。",
    "error_storage": "機器人的磁碟已滿，暫時無法產生新圖片；本次不扣額度。請稍後再試。",
    "prefs_title_user": "你的 /imagine 預設設定。每次點按都會立即儲存；--ar 16:9 等參數仍可單次覆蓋。",
    "prefs_title_chat": "本群 /imagine 的預設設定。每次點按都會立即儲存；--ar 16:9 等參數仍可單次覆蓋。",
    "prefs_rows": "\n\n比例：{ratio}\n解析度：{size}\n張數：×{variants}\n📄 每張圖附原圖檔案：{original}",
    "prefs_row_language": "\n🌐 語言：{language}",
    "prefs_language_app": "📱 跟隨應用",
    "prefs_language_app_value": "跟隨應用（{name}）",
    "prefs_original_on": "📄 總附原圖：開",
    "prefs_original_off": "📄 總附原圖：關",
    "prefs_saved": "已儲存：{ratio} · {size} · ×{variants}，原圖檔案{original}。",
    "prefs_admins_only": "只有本群管理員可以修改預設設定。",
    "on": "開",
    "off": "關",
    "history_empty": "你在這裡還沒有圖片。試試 /imagine 雪地裡的一隻紅狐狸",
    "history_made": "你在這裡最近 {hours:g} 小時的圖片：{count} 個，第 {page} / {pages} 頁。📤 再次傳送，🔁 重新生成：",
    "history_none_made": "最近 {hours:g} 小時你在這裡沒有生成圖片。",
    "history_not_made": "最近 {hours:g} 小時在這裡未生成的（失敗或已取消）：{count} 個，第 {page} / {pages} 頁。🔁 再試一次：",
    "history_running": "進行中：",
    "history_line": "{n}. {icon} {label} — {prompt}",
    "history_line_not_made": "{n}. {icon} {label} — {prompt}（{why}）",
    "history_running_line": "{icon} {label} — {prompt}",
    "history_edit": "編輯",
    "history_upscale": "放大",
    "history_cancelled": "已取消",
    "history_not_made_button": "⚠️ 未生成 · {count}",
    "history_made_button": "✅ 圖片 · {count}",
    "resend_gone": "這張圖片已不再儲存；點 🔁 重新生成。",
    "usage_report": "今日已用 {used} / {limit} 點額度，剩餘 {left} 點。",
    "usage_granted": "（今日另獲贈 {granted} 點）",
    "usage_unlimited": "你沒有每日上限。今日已用 {used} 點。",
    "usage_chat": "\n本群：已用 {used} / {limit} 點。",
    "usage_costs": "\n消耗：1K = {c1}，2K = {c2}，4K = {c4} 點。額度將於{resets}重置。",
    "resets": " {time}（{tz}，{hours} 小時 {minutes} 分鐘後）",
    "not_allowed": "抱歉，這是一個私人機器人。請聯絡機器人主人，讓其新增你的使用者 id：{user_id}",
    "id_user": "你的使用者 id：{user_id}",
    "id_user_group": "{name} 的使用者 id：{user_id}",
    "id_chat": "本群的 id：{chat_id}",
    "blocked": "你已無法使用此機器人。",
    "admins_only_cmd": "此指令僅限機器人管理員使用。",
    "grant_usage": "用法：/grant <使用者 id> <點數>",
    "grant_done": "已為 {user_id} 增加今日額度 {credits} 點。",
    "block_usage": "用法：/block <使用者 id>（或 /unblock <使用者 id>）",
    "block_done": "已封鎖使用者 {user_id}。",
    "unblock_done": "已解除封鎖使用者 {user_id}。",
    "stats": (
        "📊 今日圖片：{today}（{today_sizes}）\n"
        "最近 7 天：{week}（{week_sizes}）\n"
        "失敗（7 天）：{failures}\n"
        "尺寸不符（7 天）：{mismatches}\n"
        "活躍使用者（7 天）：{top}\n"
        "生成耗時（7 天）：中位數 {median}，p95 {p95}"
    ),
    "none": "無",
    "error_auth": "機器人的圖片 API 金鑰被拒絕，請告知機器人管理員。",
    "error_quota": "圖片服務的額度已用完，請告知機器人管理員。",
    "error_prompt_too_long": "圖片服務提示描述過長，請縮短後再試。",
    "error_invalid": "圖片服務認為該請求無效；請換一個描述或選項。",
    "error_endpoint": "機器人設定的圖片服務網址有誤，請告知機器人管理員。",
    "error_rate_limited": "圖片服務目前繁忙，請一分鐘後再試。",
    "error_upstream": "圖片服務繁忙或暫時不可用，請稍後再試。",
    "error_timeout": "圖片服務回應逾時，請再試一次。",
    "error_no_image": "沒有回傳圖片——描述可能被安全過濾攔截了，請換個說法。",
    "error_download": "圖片已生成但無法下載，請再試一次。",
    "error_not_image": "服務回傳的內容不是圖片，請再試一次。",
    "error_service": "圖片服務失敗了，請再試一次。",
    "error_telegram": "Telegram 拒絕接收這張圖片，請再試一次。",
    "error_interrupted": "這張圖片因重啟而中斷——請點 🔁 再來一張。",
    "error_reference_too_big": "參考圖 {number}（{name}）超過 20 MB，超出 Telegram 允許機器人下載的大小；請傳送更小的圖片或以壓縮照片傳送。",
    "error_reference_not_image": "參考檔案 {number}（{name}）不是圖片；請傳送 PNG、JPEG 或 WEBP 圖片。",
    "error_reference_download": "無法從 Telegram 下載參考圖 {number}，請重新傳送。",
    "error_reference_gone": "參考圖已不可用，請重新傳送。",
    "refs_received": '📥 已收到 {count} 張圖片（最多可用 {limit} 張）…',
    "variants_failed": "{total} 張中有 {failed} 張失敗：{reason}",
    "variants_ready": "已完成 {ready} / {total}",
    "refs_trimmed": "你傳送了 {count} 張圖片，我使用了前 {limit} 張。",
    "edit_choose": "🖌 {prompt}\n\n編輯 {images}。選擇比例、解析度和張數（×1 ×2 ×4），然後點「生成」：",
    "images_one": "1 張圖片",
    "images_many": "{count} 張圖片",
    "keep_ratio": "🖼 保持原比例",
    "admin_alert_auth": "⚠️ 管理員：圖片 API 拒絕了機器人的金鑰（HTTP 401）。請檢查 IMAGE_API_KEY 和 IMAGE_API_BASE_URL（.cn 的金鑰只能用於 .cn 閘道）。",
    "admin_alert_quota": "⚠️ 管理員：圖片 API 提示該金鑰的額度已用完（HTTP 403）。請到 DMXAPI 儲值。",
    "admin_alert_endpoint": "⚠️ 管理員：IMAGE_API_BASE_URL 網址上沒有圖片介面（HTTP 404/405）。請填寫閘道根網址，例如 https://www.dmxapi.cn。",
    "admin_alert_storage": "⚠️ 管理員：DATA_DIR 所在磁碟已滿，刪除了所有可刪的原圖後仍無法產生圖片。請騰出空間，或調低 DATA_MIN_FREE_MB。",
    "cmd_imagine": "生成圖片：/imagine 紅狐狸 --ar 16:9",
    "cmd_help": "使用說明",
    "cmd_cancel": "停止正在生成的圖片（/cancel all：全部）",
    "cmd_settings": "預設比例、解析度、原圖檔案",
    "cmd_history": "最近的圖片：再次傳送或重新生成",
    "cmd_usage": "今日剩餘額度",
    "cmd_start": "開始",
    "cmd_id": "你的使用者 id（及本群的 id）",
    "kind_auth": "API 金鑰被拒絕",
    "kind_quota": "API 額度已用完",
    "kind_prompt_too_long": "描述過長",
    "kind_invalid": "請求被判為無效",
    "kind_endpoint": "API 網址有誤",
    "kind_rate_limited": "服務繁忙（限流）",
    "kind_upstream": "服務繁忙或不可用",
    "kind_timeout": "回應逾時",
    "kind_no_image": "沒有回傳圖片（安全過濾？）",
    "kind_download": "圖片無法下載",
    "kind_not_image": "回傳的不是圖片",
    "kind_service": "服務失敗",
    "kind_telegram": "Telegram 拒絕接收圖片",
    "kind_interrupted": "因重啟中斷",
    "kind_reference_too_big": "參考圖超過 20 MB",
    "kind_reference_not_image": "參考檔案不是圖片",
    "kind_reference_download": "參考圖無法下載",
    "kind_reference_gone": "參考圖已不可用",
    "kind_internal": "機器人內部錯誤",
    "kind_storage": "無法儲存圖片（磁碟）",
    "kind_unknown": "未知",
    "list_sep": "、",
    "list_last": " 或 ",
    "start_again": '↩ 重新開始',
    "drop_pictures": '🆕 不用這張圖，生成新圖',
    "unknown_flags": '這些不是本機器人的選項：{flags}（已從描述中移除）。',
    "picture_waiting": '🖼 收到圖片。現在傳送要對它做什麼，例如「改成水彩畫」；或傳送 /imagine … 生成新圖。',
    "pictures_waiting": '🖼 收到這些圖片。現在傳送要對它們做什麼，例如「把它們放在一張海報上」；或傳送 /imagine … 生成新圖。',
    "error_reference_animated": '圖片 {number}（{name}）是動圖（GIF 或動畫）；請傳送靜態圖片：PNG、JPEG 或 WEBP。',
    "media_unusable": '我無法使用{what}。傳送描述來生成圖片，或傳送照片來編輯。',
    "media_animation": 'GIF 或動圖',
    "media_sticker": '貼圖',
    "media_video": '影片',
    "media_video_note": '影片訊息',
    "media_voice": '語音訊息',
    "media_audio": '音訊檔案',
    "media_location": '位置',
    "media_venue": '地點',
    "media_contact": '聯絡人',
    "media_poll": '投票',
    "media_dice": '骰子',
    "media_game": '遊戲',
    "media_story": '限時動態',
    "media_file": '這個檔案（{name}）：它不是圖片（PNG、JPEG 或 WEBP）',
    "original_file": '📄 原圖檔案 · {details}',
    "quota_exceeded_group": '{name}，本次需要 {credits} 點，你今日的額度不夠了。{hint}在私聊中向我傳送 /usage 可查看你的額度。',
}

TEXTS: dict[str, dict[str, str]] = {"en": EN, "zh": ZH, "zh-hant": ZH_HANT}


def language(code: str | None) -> str:
    """Telegram's `language_code` (`zh-hans`, `zh-TW`, `zh-Hant-HK`, `en-GB`…) → one of LANGUAGES; English otherwise."""
    parts = (code or "en").replace("_", "-").lower().split("-")
    if parts[0] == "zh":
        return "zh-hant" if _TRADITIONAL & set(parts[1:]) else "zh"
    return parts[0] if parts[0] in TEXTS else "en"


def t(key: str, lang: str | None = None, **values: object) -> str:
    template = TEXTS[language(lang)].get(key) or EN[key]
    return template.format(**values)


def for_requester(prompt: str, requester: str | None, lang: str | None) -> str:
    """In a group, whose request a keyboard or status line is (`for Alice: a red fox`); elsewhere the prompt."""
    return t("for_requester", lang, name=requester, prompt=prompt) if requester else prompt


def join_list(items: Iterable[object], lang: str | None = None) -> str:
    """`1, 2 or 4` in English, `1、2 或 4` in Chinese."""
    words = [str(item) for item in items]
    if len(words) < 2:
        return "".join(words)
    return t("list_sep", lang).join(words[:-1]) + t("list_last", lang) + words[-1]


def resets_text(resets_at: datetime, now: datetime, lang: str | None) -> str:
    left = max(0, int((resets_at - now).total_seconds()))
    tz = resets_at.tzname() or "UTC"
    return t("resets", lang, time=resets_at.strftime("%H:%M"), tz=tz, hours=left // 3600, minutes=left % 3600 // 60)
