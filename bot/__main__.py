"""`imagine-bot` runs the bot; `imagine-bot generate PROMPT --ar 16:9 --size 2K` makes one image from the shell."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

from telegram.error import InvalidToken, NetworkError, TelegramError

from .config import Settings, SettingsError, load_settings
from .imagegen import ImageClient, ImageGenError, NotAnImageError, TooManyPixelsError, inspect_image
from .options import (
    MAX_PROMPT_CHARS,
    AspectRatio,
    ImageRequest,
    OptionError,
    Resolution,
    parse_prompt,
)
from .references import MAX_REFERENCES
from .store import StoreError
from .texts import t

log = logging.getLogger("bot")

EXIT_CONFIG = 2


def _fail(message: str, code: int = 1) -> int:
    print(f"imagine-bot: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagine-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    gen = sub.add_parser("generate", help="make one image and save it under --out")
    gen.add_argument("prompt", help='what to draw; flags like "--ar 16:9" inside it work too')
    gen.add_argument("--ar", "--aspect", dest="ratio", help="aspect ratio: " + ", ".join(r.value for r in AspectRatio))
    gen.add_argument("--size", help="1K, 2K or 4K")
    gen.add_argument("--out", type=Path, default=Path("output"), help="folder to save into (default: output/)")
    gen.add_argument("--image", type=Path, action="append", default=[], metavar="PATH",
                     help=f"a reference picture to edit or combine (repeat, up to {MAX_REFERENCES})")
    args = parser.parse_args(argv)

    from .logs import setup_logging

    try:
        settings = load_settings()
    except SettingsError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    setup_logging(settings.log_level, settings.secrets())
    if args.command == "generate":
        return asyncio.run(_generate(settings, args))
    return _serve(settings)


def _serve(settings: Settings) -> int:
    from .app import run_bot

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_bot(settings, stop)

    try:
        asyncio.run(run())
    except InvalidToken:
        return _fail("TELEGRAM_BOT_TOKEN was refused by Telegram: check it with @BotFather", EXIT_CONFIG)
    except NetworkError as exc:
        return _fail(f"cannot reach the Telegram Bot API at {settings.telegram_api_base_url}: {exc.message}")
    except TelegramError as exc:
        return _fail(f"Telegram refused to start the bot: {exc.message}")
    except StoreError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        return 130
    except OSError as exc:
        return _fail(f"cannot use the data folder {settings.data_dir}: {exc.strerror or exc}", EXIT_CONFIG)
    return 0


async def _generate(settings: Settings, args: argparse.Namespace) -> int:
    try:
        parsed = parse_prompt(args.prompt)
        ratio = AspectRatio.parse(args.ratio) if args.ratio else parsed.aspect_ratio or settings.default_aspect_ratio
        size = Resolution.parse(args.size) if args.size else parsed.size or settings.default_size
    except OptionError as exc:
        return _fail(f"unknown {exc.flag} value {exc.value!r}; use one of {', '.join(exc.valid)}", EXIT_CONFIG)
    except ValueError as exc:
        return _fail(f"unknown value {exc}; ratios: {', '.join(r.value for r in AspectRatio)}; sizes: 1K, 2K, 4K",
                     EXIT_CONFIG)
    if not parsed.prompt:
        return _fail("the prompt is empty", EXIT_CONFIG)
    if len(parsed.prompt) > MAX_PROMPT_CHARS:
        return _fail(f"the prompt has {len(parsed.prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}", EXIT_CONFIG)
    request = ImageRequest(parsed.prompt, ratio, size)
    if len(args.image) > MAX_REFERENCES:
        return _fail(f"at most {MAX_REFERENCES} --image pictures, got {len(args.image)}", EXIT_CONFIG)
    images = []
    for number, path in enumerate(args.image, start=1):
        try:
            data = path.read_bytes()
            inspect_image(data)
        except OSError as exc:
            return _fail(f"cannot read --image {path}: {exc.strerror}", EXIT_CONFIG)
        except TooManyPixelsError:
            return _fail(f"--image {path} (number {number}) has far too many pixels", EXIT_CONFIG)
        except NotAnImageError:
            return _fail(f"--image {path} (number {number}) is not a PNG, JPEG or WEBP picture", EXIT_CONFIG)
        images.append(data)
    args.out.mkdir(parents=True, exist_ok=True)
    client = ImageClient.from_settings(settings, max_connections=2, spool_dir=args.out)
    client.open()
    what = f"editing {len(images)} picture(s) into" if images else "generating"
    print(f"{what} {request.label} ({request.expected_pixels[0]}×{request.expected_pixels[1]})…", file=sys.stderr)
    started = time.monotonic()
    try:
        image = await client.generate(request, images)
    except ImageGenError as exc:
        rid = f" (request id {exc.request_id})" if exc.request_id else ""
        detail = exc.detail
        for secret in settings.secrets():  # an upstream message may quote what it was sent
            detail = detail.replace(secret, "***")
        return _fail(f"{t('error_' + exc.kind)} [{detail}]{rid}")
    finally:
        await client.aclose()
    from .delivery import safe_filename

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out / f"{stamp}_{safe_filename(request.prompt, ratio, size, image.extension)}"
    image.path.replace(path)
    print(f"{path}  {image.width}×{image.height}  {image.nbytes / 1024 / 1024:.1f} MB  "
          f"{time.monotonic() - started:.1f} s")
    if (image.width, image.height) != request.expected_pixels:
        print(f"warning: asked {request.label} ({request.expected_pixels[0]}×{request.expected_pixels[1]}), "
              f"the service returned {image.width}×{image.height}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
