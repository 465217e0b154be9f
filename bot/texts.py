"""Every sentence a user can see, in English and Simplified Chinese. Handlers and services ask for a key."""

from __future__ import annotations

from datetime import datetime

LANGUAGES = {"en": "English", "zh": "中文"}

EN: dict[str, str] = {
    "start": (
        "Hi! I turn a description into a picture.\n\n"
        "Send /imagine and what you want to see, for example:\n"
        "/imagine a red fox in fresh snow, golden hour\n\n"
        "Then pick the shape and the resolution and tap Generate. /help shows all options.{quota_line}"
    ),
    "help": (
        "How to use me\n\n"
        "/imagine <description> — pick shape and resolution on the buttons, then ✨ Generate.\n\n"
        "Skip the buttons with options anywhere in the text:\n"
        "  --ar 16:9 — shape: {ratios}\n"
        "  --size 2K — resolution: 1K, 2K or 4K (or just --2k)\n"
        "Example: /imagine a lighthouse at night --ar 9:16 --4k\n\n"
        "  --n 4 — four variants at once (1, 2 or 4)\n\n"
        "Reply /imagine to a message to use its text as the description. Send a photo or album with the caption "
        "/imagine make it a watercolour (or reply /imagine … to one) to edit or combine pictures.\n\n"
        "Under every picture: 🔁 Again makes another, 📐 Change picks new options, "
        "📄 Original sends the full-quality file.\n\n"
        "/cancel stops your running image · /history your last images · /settings your defaults · "
        "/usage credits left{quota_line}"
    ),
    "quota_line": "\n\nToday: {left} of {limit} credits left (1K = {c1}, 2K = {c2}, 4K = {c4}).",
    "usage": "Tell me what to draw, e.g. /imagine a red fox in fresh snow --ar 16:9",
    "prompt_too_long": "That description has {length:,} characters; the limit is {limit:,}. Please shorten it.",
    "bad_ratio": "I don't know the shape “{value}”. Use one of: {valid}.",
    "bad_size": "I don't know the resolution “{value}”. Use one of: {valid}.",
    "bad_variants": "I can make {valid} images at once, not “{value}”.",
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
    "cancelled": "✖ Cancelled · {label}\n{prompt}",
    "done_line": "✅ Done · {label}",
    "paused_restart": "⏸ The bot is restarting; your image continues as soon as it is back.\n{prompt}",
    "queue_full": "You already have {limit} images in progress; wait for one to finish or /cancel one.",
    "quota_exceeded": (
        "Not enough credits: this needs {credits}, {left} left today. They reset {resets}. "
        "Try a smaller size, or ask an admin."
    ),
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
    "size_mismatch": "asked {asked}, the service returned {actual}",
    "original_too_big": "The original ({mb:.0f} MB) is larger than Telegram lets a bot send.",
    "internal": "Something went wrong on my side; please try again.",
    "prefs_title_user": "Your defaults for /imagine (options like --ar 16:9 still win for one request):",
    "prefs_title_chat": "Defaults for /imagine in this chat (options like --ar 16:9 still win for one request):",
    "prefs_original_on": "📄 Always send the original file: on",
    "prefs_original_off": "📄 Always send the original file: off",
    "prefs_done": "✓ Done",
    "prefs_saved": "Saved: {ratio} · {size} · ×{variants}, original file {original}.",
    "prefs_admins_only": "Only the chat's admins can change its defaults.",
    "on": "on",
    "off": "off",
    "history_empty": "You have no images here yet. Try /imagine a red fox in fresh snow",
    "history_title": "Your last images here (📤 sends it again, 🔁 makes a new one):",
    "history_line": "{n}. {icon} {label} — {prompt}",
    "resend_gone": "That image is no longer stored; tap 🔁 to make it again.",
    "usage_report": "Today you used {used} of {limit} credits; {left} left.",
    "usage_granted": " (+{granted} granted today)",
    "usage_unlimited": "You have no daily limit. Used today: {used} credits.",
    "usage_chat": "\nThis chat: {used} of {limit} credits used.",
    "usage_costs": "\nCosts: 1K = {c1}, 2K = {c2}, 4K = {c4} credits. Credits reset {resets}.",
    "resets": "at {time} {tz} (in {hours} h {minutes} min)",
    "not_allowed": "Sorry, this bot is private. Ask its owner to add you.",
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
    "prefs_language": "🌐 {name}",
    # one sentence per failure kind (imagegen.ImageGenError.kind and delivery failures)
    "error_auth": "The bot's image API key was refused; please tell the bot's admin.",
    "error_quota": "The image service's credit is used up; please tell the bot's admin.",
    "error_prompt_too_long": "The image service says the description is too long; please shorten it.",
    "error_invalid": "The image service refused this request as invalid; try another description or option.",
    "error_endpoint": "The bot is set up with a wrong image service address; please tell the bot's admin.",
    "error_rate_limited": "The image service is busy right now; please try again in a minute.",
    "error_upstream": "The image service had an error; please try again in a moment.",
    "error_timeout": "The image service took too long; try again, or a smaller resolution.",
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
    "refs_received": "📥 {count} of {limit} reference images received…",
    "variants_failed": "{failed} of {total} failed: {reason}",
    "variants_ready": "{ready} of {total} ready",
    "refs_trimmed": "You sent {count} images; I used the first {limit}.",
    "edit_choose": "🖌 {prompt}\n\nEditing {count} image(s). Shape and resolution, then Generate:",
    "keep_ratio": "🖼 Keep ratio",
    "admin_alert_auth": "⚠️ Admin: the image API refused the bot's key (HTTP 401). Check IMAGE_API_KEY and "
    "IMAGE_API_BASE_URL (a .cn key works only with the .cn gateway).",
    "admin_alert_quota": "⚠️ Admin: the image API says the key's credit is used up (HTTP 403). Top it up at DMXAPI.",
    "admin_alert_endpoint": "⚠️ Admin: nothing answers image requests at IMAGE_API_BASE_URL (HTTP 404/405). "
    "Use the gateway's root, e.g. https://www.dmxapi.cn.",
    # the command menu
    "cmd_imagine": "Make an image: /imagine a red fox --ar 16:9",
    "cmd_help": "How to use the bot",
    "cmd_cancel": "Stop your running image (/cancel all: every one)",
    "cmd_settings": "Default shape, resolution, original file",
    "cmd_history": "Your last images: send again or redo",
    "cmd_usage": "Credits left today",
    "cmd_start": "Start",
}

ZH: dict[str, str] = {
    "start": (
        "你好！我可以把文字描述变成图片。\n\n"
        "发送 /imagine 加上你想看到的画面，例如：\n"
        "/imagine 雪地里的一只红狐狸，黄金时刻\n\n"
        "然后选择画面比例和分辨率，点“生成”。/help 查看全部选项。{quota_line}"
    ),
    "help": (
        "使用方法\n\n"
        "/imagine <描述> — 在按钮上选择比例和分辨率，然后点 ✨ 生成。\n\n"
        "也可以在描述中任意位置加参数，跳过按钮：\n"
        "  --ar 16:9 — 比例：{ratios}\n"
        "  --size 2K — 分辨率：1K、2K 或 4K（也可写 --2k）\n"
        "例如：/imagine 夜晚的灯塔 --ar 9:16 --4k\n\n"
        "  --n 4 — 一次生成 4 张变体（1、2 或 4）\n\n"
        "回复某条消息并发送 /imagine，即以该消息的文字作为描述。发送照片或相册并附上说明 /imagine 改成水彩画"
        "（或回复照片 /imagine …），即可编辑或合成图片。\n\n"
        "每张图下方：🔁 再来一张，📐 修改选项，📄 原图发送高清原文件。\n\n"
        "/cancel 停止正在生成的图片 · /history 最近的图片 · /settings 默认设置 · /usage 剩余额度{quota_line}"
    ),
    "quota_line": "\n\n今日剩余 {left} / {limit} 点额度（1K = {c1}，2K = {c2}，4K = {c4}）。",
    "usage": "请告诉我要画什么，例如：/imagine 雪地里的一只红狐狸 --ar 16:9",
    "prompt_too_long": "描述共有 {length:,} 个字符，上限为 {limit:,}。请缩短后再试。",
    "bad_ratio": "不支持比例“{value}”。可用的比例：{valid}。",
    "bad_size": "不支持分辨率“{value}”。可用的分辨率：{valid}。",
    "bad_variants": "一次可以生成 {valid} 张图片，不支持“{value}”。",
    "choose": "🎨 {prompt}\n\n选择比例和分辨率，然后点“生成”：",
    "generate": "✨ 生成",
    "cancel": "✖ 取消",
    "cancelled_keyboard": "已取消。发送 /imagine 重新开始。",
    "expired": "该请求已过期，请重新发送 /imagine。",
    "not_yours": "这些按钮属于别人的请求。",
    "already_started": "已经在处理了。",
    "queued": "⏳ 排队中 · {label}\n{prompt}",
    "queued_ahead": "⏳ 排队中 — 前面还有 {ahead} 个 · {label}\n{prompt}",
    "generating": "🎨 正在生成 {label}… {elapsed}\n{prompt}",
    "cancelled": "✖ 已取消 · {label}\n{prompt}",
    "done_line": "✅ 已完成 · {label}",
    "paused_restart": "⏸ 机器人正在重启，恢复后会继续生成你的图片。\n{prompt}",
    "queue_full": "你已有 {limit} 张图片在处理中；请等待完成，或用 /cancel 取消一张。",
    "quota_exceeded": "额度不足：本次需要 {credits} 点，今日剩余 {left} 点。额度将于{resets}重置。可以换小一点的分辨率，或联系管理员。",
    "failed": "⚠️ {reason}\n{prompt}",
    "again": "🔁 再来一张",
    "change": "📐 修改",
    "original": "📄 原图",
    "cancel_job": "✖ 取消",
    "cancel_done": "已取消。",
    "nothing_to_cancel": "你没有正在进行的任务。",
    "original_gone": "原图已不再保存；点 🔁 再来一张 重新生成。",
    "original_sent": "原图已作为文件发送。",
    "busy_shutdown": "机器人正在重启，请一分钟后再发送。",
    "size_mismatch": "请求 {asked}，服务返回 {actual}",
    "original_too_big": "原图（{mb:.0f} MB）超过了 Telegram 允许机器人发送的大小。",
    "internal": "我这边出了点问题，请再试一次。",
    "prefs_title_user": "你的 /imagine 默认设置（--ar 16:9 等参数仍可单次覆盖）：",
    "prefs_title_chat": "本群 /imagine 的默认设置（--ar 16:9 等参数仍可单次覆盖）：",
    "prefs_original_on": "📄 总是发送原图文件：开",
    "prefs_original_off": "📄 总是发送原图文件：关",
    "prefs_done": "✓ 完成",
    "prefs_saved": "已保存：{ratio} · {size} · ×{variants}，原图文件{original}。",
    "prefs_admins_only": "只有本群管理员可以修改默认设置。",
    "on": "开",
    "off": "关",
    "history_empty": "你在这里还没有图片。试试 /imagine 雪地里的一只红狐狸",
    "history_title": "你在这里最近的图片（📤 再次发送，🔁 重新生成）：",
    "history_line": "{n}. {icon} {label} — {prompt}",
    "resend_gone": "这张图片已不再保存；点 🔁 重新生成。",
    "usage_report": "今日已用 {used} / {limit} 点额度，剩余 {left} 点。",
    "usage_granted": "（今日另获赠 {granted} 点）",
    "usage_unlimited": "你没有每日上限。今日已用 {used} 点。",
    "usage_chat": "\n本群：已用 {used} / {limit} 点。",
    "usage_costs": "\n消耗：1K = {c1}，2K = {c2}，4K = {c4} 点。额度将于{resets}重置。",
    "resets": " {time}（{tz}，{hours} 小时 {minutes} 分钟后）",
    "not_allowed": "抱歉，这是一个私人机器人。请联系机器人主人添加你。",
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
    "prefs_language": "🌐 {name}",
    "error_auth": "机器人的图片 API 密钥被拒绝，请告知机器人管理员。",
    "error_quota": "图片服务的额度已用完，请告知机器人管理员。",
    "error_prompt_too_long": "图片服务提示描述过长，请缩短后再试。",
    "error_invalid": "图片服务认为该请求无效；请换一个描述或选项。",
    "error_endpoint": "机器人配置的图片服务地址有误，请告知机器人管理员。",
    "error_rate_limited": "图片服务当前繁忙，请一分钟后再试。",
    "error_upstream": "图片服务出错了，请稍后再试。",
    "error_timeout": "图片服务响应超时；请重试，或选择较低的分辨率。",
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
    "refs_received": "📥 已收到 {count} / {limit} 张参考图…",
    "variants_failed": "{total} 张中有 {failed} 张失败：{reason}",
    "variants_ready": "已完成 {ready} / {total}",
    "refs_trimmed": "你发送了 {count} 张图片，我使用了前 {limit} 张。",
    "edit_choose": "🖌 {prompt}\n\n编辑 {count} 张图片。选择比例和分辨率，然后点“生成”：",
    "keep_ratio": "🖼 保持原比例",
    "admin_alert_auth": "⚠️ 管理员：图片 API 拒绝了机器人的密钥（HTTP 401）。请检查 IMAGE_API_KEY 和 "
    "IMAGE_API_BASE_URL（.cn 的密钥只能用于 .cn 网关）。",
    "admin_alert_quota": "⚠️ 管理员：图片 API 提示该密钥的额度已用完（HTTP 403）。请到 DMXAPI 充值。",
    "admin_alert_endpoint": "⚠️ 管理员：IMAGE_API_BASE_URL 地址上没有图片接口（HTTP 404/405）。请填写网关根地址，例如 https://www.dmxapi.cn。",
    "cmd_imagine": "生成图片：/imagine 红狐狸 --ar 16:9",
    "cmd_help": "使用说明",
    "cmd_cancel": "停止正在生成的图片（/cancel all：全部）",
    "cmd_settings": "默认比例、分辨率、原图文件",
    "cmd_history": "最近的图片：再次发送或重新生成",
    "cmd_usage": "今日剩余额度",
    "cmd_start": "开始",
}

TEXTS: dict[str, dict[str, str]] = {"en": EN, "zh": ZH}


def language(code: str | None) -> str:
    """Telegram's `language_code` (`zh-hans`, `zh-CN`, `en-GB`…) → one of LANGUAGES; English otherwise."""
    base = (code or "en").split("-")[0].split("_")[0].lower()
    return base if base in TEXTS else "en"


def t(key: str, lang: str | None = None, **values: object) -> str:
    template = TEXTS[language(lang)].get(key) or EN[key]
    return template.format(**values)


def resets_text(resets_at: datetime, now: datetime, lang: str | None) -> str:
    left = max(0, int((resets_at - now).total_seconds()))
    tz = resets_at.tzname() or "UTC"
    return t("resets", lang, time=resets_at.strftime("%H:%M"), tz=tz, hours=left // 3600, minutes=left % 3600 // 60)
