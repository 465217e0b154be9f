"""`imagine-bot` runs the bot; `imagine-bot worker` only runs jobs; `imagine-bot generate PROMPT --ar 16:9` makes one image from the shell."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from telegram.error import InvalidToken, NetworkError, TelegramError

from .config import ImageSettings, Settings, SettingsError, load_settings
from .failures import failure
from .imagegen import (
    ImageClient,
    ImageGenError,
    NotAnImageError,
    TooManyPixelsError,
    inspect_image,
)
from .imagemodels import PROFILES, Option, UnknownModel, find_profile
from .options import (
    AspectRatio,
    ImageRequest,
    OptionError,
    Resolution,
    closest_ratio,
    parse_prompt,
)
from .serve import ServeError
from .store import StoreError
from .texts import join_list, t

log = logging.getLogger("bot")

EXIT_CONFIG = 2


def _fail(message: str, code: int = 1) -> int:
    print(f"imagine-bot: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagine-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("worker", help="only run jobs from the shared database: no updates, no webhook, no polling")
    gen = sub.add_parser(
        "generate",
        help="make one image and save it under --out",
        epilog=_models_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen.add_argument("prompt", help='what to draw; flags like "--ar 16:9" or "--model pro" inside it work too')
    gen.add_argument("--model", help="the model, by name or alias (below); default: the first of IMAGE_MODELS")
    gen.add_argument("--ar", "--aspect", dest="ratio", help="aspect ratio: " + ", ".join(r.value for r in AspectRatio))
    gen.add_argument("--size", help="1K, 2K or 4K (the model's tiers, below)")
    for option in _model_options():
        takers = ", ".join(p.name for p in PROFILES.values() if option.name in {o.name for o in p.extra_options})
        gen.add_argument(
            option.flag,
            dest=f"option_{option.name}",
            metavar=option.name.upper(),
            help=f"{takers} only: {', '.join(option.choices)} (default {option.default})",
        )
    gen.add_argument("--out", type=Path, default=Path("output"), help="folder to save into (default: output/)")
    gen.add_argument(
        "--image",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="a reference picture to edit or combine (repeat; as many as the model takes, below)",
    )
    args = parser.parse_args(argv)

    from .logs import SecretMaskingFormatter, setup_logging

    try:
        settings = load_settings(ImageSettings if args.command == "generate" else Settings)
    except SettingsError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    if args.command == "generate":
        # At a shell: warnings only (a retry is one line), without the service log's time stamps and module names.
        handler = setup_logging("WARNING", settings.secrets())
        handler.setFormatter(SecretMaskingFormatter("imagine-bot: %(message)s", settings.secrets()))
        return asyncio.run(_generate(settings, args))
    assert isinstance(settings, Settings)  # every command but `generate` loads the bot's settings
    setup_logging(settings.log_level, settings.secrets(), log_format=settings.log_format)
    return _serve(settings, intake=args.command != "worker")


def _serve(settings: Settings, *, intake: bool = True) -> int:
    from .app import run_bot
    from .bot_api import BotApiUnreachable, NotTheBotApi

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_bot(settings, stop, intake=intake)

    try:
        asyncio.run(run())
    except NotTheBotApi as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except InvalidToken:
        return _fail("TELEGRAM_BOT_TOKEN was refused by Telegram: check it with @BotFather", EXIT_CONFIG)
    except BotApiUnreachable as exc:
        return _fail(str(exc))
    except NetworkError as exc:
        return _fail(f"cannot reach the Telegram Bot API at {settings.telegram_api_base_url}: {exc.message}")
    except TelegramError as exc:
        return _fail(f"Telegram refused to start the bot: {exc.message}")
    except (StoreError, ServeError) as exc:
        return _fail(str(exc), EXIT_CONFIG)
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        return 130
    except OSError as exc:
        return _fail(f"cannot use the data folder {settings.data_dir}: {exc.strerror or exc}", EXIT_CONFIG)
    return 0


def shell_error(exc: ImageGenError, url: str) -> str:
    """One line: what failed, the service's status and message, its request id once."""
    detail, what = exc.detail, failure(exc.kind).operator.format(url=url)  # not the chat's sentences: for the operator
    if exc.status is None and exc.kind in ("upstream", "timeout"):  # no answer at all
        detail = detail.removeprefix("connection failed: ")
        if exc.kind == "upstream":
            what = f"cannot reach the image API at {url}"
    line = f"{what}: {detail}" if detail else what
    if exc.request_id and "request id" not in line:  # the gateway often quotes it in its message already
        line += f" (request id {exc.request_id})"
    return line


def _model_options() -> list[Option]:
    """The models' own options (beyond ratio and size), once each: the CLI's flags for them."""
    options: dict[str, Option] = {}
    for profile in PROFILES.values():
        for option in profile.extra_options:
            options.setdefault(option.name, option)
    return list(options.values())


def _models_help() -> str:
    """`--help`'s list of the models: names, aliases, options and how many pictures each takes."""
    lines = ["models (--model NAME or an alias; IMAGE_MODELS maps a name to the gateway's id):"]
    for profile in PROFILES.values():
        options = "; ".join(f"{o.flag} {'/'.join(o.choices)}" for o in profile.options[1:])
        lines.append(
            f"  {profile.name} ({', '.join(profile.aliases)}): {options}; up to {profile.max_references()} --image"
        )
    return "\n".join(lines)


def _bad_option(exc: OptionError) -> str:
    """The chat's sentence for a bad flag value."""
    valid = join_list(exc.valid)
    if exc.flag == "--model":
        return t("bad_model", value=exc.value or "?", valid=valid)
    if exc.model is not None:  # a value another model has
        return t("bad_option", model=exc.model, flag=exc.flag, value=exc.value or "?", valid=valid)
    key = {"--ar": "bad_ratio", "--size": "bad_size", "--n": "bad_variants"}.get(exc.flag)
    if key is None:
        return t("bad_option", model="this model", flag=exc.flag, value=exc.value or "?", valid=valid)
    return t(key, value=exc.value or "?", valid=valid)


async def _generate(settings: ImageSettings, args: argparse.Namespace) -> int:
    try:
        parsed = parse_prompt(args.prompt, list(PROFILES))
        try:
            profile = find_profile(args.model or parsed.model or settings.default_model)
        except UnknownModel:
            raise OptionError("--model", args.model, list(PROFILES)) from None
        given = {
            o.name: getattr(args, f"option_{o.name}")
            for o in _model_options()
            if getattr(args, f"option_{o.name}") is not None
        }
        for name, value in given.items():
            option = next((o for o in profile.extra_options if o.name == name), None)
            if option is None:
                return _fail(f"--{name} is not an option of {profile.name}", EXIT_CONFIG)
            given[name] = option.normalise(value)
        parsed = dataclasses.replace(
            parsed,
            aspect_ratio=_option("--ar", args.ratio, AspectRatio) or parsed.aspect_ratio,
            size=_option("--size", args.size, Resolution) or parsed.size,
            options={**parsed.options, **given},
        )
        base = {"size": settings.default_size.value}
        options, not_taken = parsed.choose(profile, base)
    except OptionError as exc:
        return _fail(_bad_option(exc), EXIT_CONFIG)
    if not parsed.prompt:
        return _fail("the prompt is empty", EXIT_CONFIG)
    if len(parsed.prompt) > profile.prompt_limit:
        return _fail(
            f"the prompt has {len(parsed.prompt):,} characters; the limit is {profile.prompt_limit:,}", EXIT_CONFIG
        )
    if len(args.image) > profile.max_references():
        return _fail(
            f"at most {profile.max_references()} --image pictures for {profile.name}, got {len(args.image)}",
            EXIT_CONFIG,
        )
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
    if parsed.aspect_ratio is None:  # an edit keeps the first picture's shape, as a chat preselects it
        shape = closest_ratio(*inspect_image(images[0])[1:]) if images else settings.default_aspect_ratio
        options["ratio"] = profile.option("ratio").closest(shape.value)
    request = ImageRequest(parsed.prompt, model=profile.name, options=options)
    unknown = [*parsed.unknown, *not_taken]
    if unknown:
        print(f"not options here (left out of the prompt): {', '.join(unknown)}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    client = ImageClient.from_settings(settings, max_connections=2, spool_dir=args.out)
    client.open()
    pictures = "1 picture" if len(images) == 1 else f"{len(images)} pictures"
    what = f"editing {pictures} into" if images else "generating"
    print(
        f"{what} {request.label} ({request.expected_pixels[0]}×{request.expected_pixels[1]}) with {profile.name}…",
        file=sys.stderr,
    )
    started = time.monotonic()
    try:
        image = await client.generate(request, images)
    except ImageGenError as exc:
        line = shell_error(exc, client.url_of(request, edit=bool(images)))
        for secret in settings.secrets():  # an upstream message may quote what it was sent
            line = line.replace(secret, "***")
        return _fail(line)
    finally:
        await client.aclose()
    from .delivery import safe_filename

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out / f"{stamp}_{safe_filename(request.prompt, options['ratio'], options['size'], image.extension)}"
    image.path.replace(path)
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)  # a file of the user's, not the private spool file it was
    print(
        f"{path}  {image.width}×{image.height}  {image.nbytes / 1024 / 1024:.1f} MB  {time.monotonic() - started:.1f} s"
    )
    if not request.matches(image.width, image.height):
        print(
            f"warning: asked {request.label} ({request.expected_pixels[0]}×{request.expected_pixels[1]}), "
            f"the service returned {image.width}×{image.height}",
            file=sys.stderr,
        )
    return 0


_Choice = TypeVar("_Choice", AspectRatio, Resolution)


def _option(flag: str, value: str | None, kind: type[_Choice]) -> _Choice | None:
    """A command-line --ar/--size value, refused the way the same flag in a chat prompt is."""
    if value is None:
        return None
    try:
        return kind.parse(value)
    except ValueError:
        raise OptionError(flag, value, [c.value for c in kind]) from None


if __name__ == "__main__":
    sys.exit(main())
