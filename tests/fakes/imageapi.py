"""A fake of DMXAPI's image API for the four models on one key (docs/IMAGE-API.md, issue 23's MODELS.md),
served over real HTTP.

``FakeImageAPI`` listens on 127.0.0.1 (a free port) and answers each model on the routes its vendor page names,
with the rules of ``tests/fakes/imagemodels.py`` (a request that breaks them gets the vendor's 400):

* ``nano-banana-2``: ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart, one
  ``image`` part per picture, up to 14); ``aspect_ratio`` + ``size`` 1K/2K/4K pick a PNG from ``SIZES``; ``n`` is 1;
  ``{"created", "data": [{"url"|"b64_json"}]}`` (``url`` unless asked); errors in the gateway's
  ``{"error": {message, type, code}}``.
* ``gemini-3-pro-image``: ``POST /v1beta/models/gemini-3-pro-image:generateContent``, key in ``x-goog-api-key``;
  a text part then up to 11 ``inline_data`` parts; ``generationConfig.responseModalities`` with ``IMAGE``;
  ``imageConfig.aspectRatio`` / ``imageSize`` pick a PNG from ``SIZES``; ``{"candidates": [{"content": {"parts":
  [{"text"} if TEXT was asked, {"inlineData": {mimeType, data}}]}, "finishReason": "STOP"}], "usageMetadata"}``;
  errors in Google's ``{"error": {code, message, status}}``.
* ``gpt-image-2`` (``gpt-image-2-ssvip`` is the same model): generations (JSON) and edits (multipart, 1-16
  ``image`` parts, optional ``mask``); ``size`` ``auto`` (1024x1024) or ``WxH`` within the vendor's rules; ``n``
  1-10 images of ``output_format`` png/jpeg/webp; ``data[].b64_json`` unless ``response_format: "url"``; errors in
  OpenAI's ``{"error": {message, type, param, code}}``.
* ``doubao-seedream-4-5-251128``: generations only (JSON, references as ``image`` URLs or data URIs); ``size``
  ``WxH`` within the vendor's rules, or ``2K``/``4K`` (answered 2048x2048 / 4096x4096); a JPEG as ``data[].url``
  unless ``b64_json`` is asked; errors in the gateway's shape. Its ``/v1/images/edits`` answers 404
  (``unsupported_endpoint``): the vendor has no such endpoint for it, and a wrong path is a 404, not a bad value.
* ``GET /files/<id>.<png|jpeg|webp>`` with the image a ``url`` answer points at.
* the gateway's chat models (issue 27): ``POST /v1/chat/completions``, key as ``Authorization: Bearer``, with the
  rules and answers of ``tests/fakes/chatmodel.py`` (OpenAI's shape); recorded apart (``chat_requests``), with
  injections of their own (``chat_next``, ``chat_refuse_next``, ``chat_fail_next``, ``chat_junk_next``,
  ``chat_stream_next``, ``chat_delay_next``) that image requests never consume, nor chat requests theirs. Per
  chat request: auth (401), a body that is no JSON object (400), the model (404 unknown, 400 an image model, 503
  outside ``chat_models``), the rules (400), then the delay (``chat_delay_next``, else ``chat_delay``), then
  ``chat_fail_next``, ``chat_stream_next``, ``chat_junk_next``, an injected reply (``chat_next`` /
  ``chat_refuse_next``, served exactly), else ``chat_reply``'s text (JSON if ``response_format`` asks, cut at
  ``max_tokens`` with ``finish_reason: "length"``). Refused requests consume no chat injection. Chat calls share
  the key's ``key_limit`` slots with image calls, as one gateway key does, and count in ``chat_inflight``.

A model id the fake does not know, or a model on a route its page does not name, gets 400 ``model_not_found``; a
known id missing from ``models`` (the key's group) gets the gateway's 503 ``model_not_found``.

Every request is recorded (``Recorded``: model, path, parsed body, references decoded the same way for every model),
answers carry ``X-Request-Id``, and tests can inject failures, junk answers, other image sizes and delays for the
next requests.

Per request, after the body is read: auth (401: ``Authorization: Bearer`` on ``/v1/images/*``, ``x-goog-api-key``
on ``/v1beta``), then a body that is no JSON object / no form (400), then the model (400 unknown or not on this
route, 503 not in ``models``, 404 Seedream's edits), then the model's rules (400, nano-banana-2's long prompt 413),
then the delay (``delay_next`` override, else ``delay``), then an injected failure (``fail_next``, in the model's
error shape), else a hostile stream (``stream_next``: endless, dripping, oversized base64), else injected junk
(``junk_next``; Gemini has its own refusals), else the images (each: exact bytes from ``image_next``, else the
model's format at the size from ``size_next`` or the request), base64 written in ``b64_style`` when that is set.
Requests refused by auth or validation consume none of the injection queues. An injection that has no meaning for
the model asked (a ``url`` junk for Gemini, a Gemini refusal for the others) is answered 418, so a test that
misuses the fake fails instead of passing by accident.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import secrets
import struct
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from aiohttp import web
from PIL import Image, ImageChops, ImageDraw

from tests.fakes.chatmodel import (
    CHAT_JUNK_KINDS,
    CHAT_MODELS,
    CHAT_STREAM_KINDS,
    FINISH_REASONS,
    ChatPlan,
    ChatRecorded,
    ChatReply,
    check_chat,
    completion,
    default_content,
    junk,
    rewrite,
    stream_pieces,
)
from tests.fakes.imagemodels import (
    ERROR_SHAPE,
    FORMATS,
    GEMINI,
    GEMINI_TOKENS,
    GPT,
    MAX_IMAGES,
    MAX_PROMPT,
    MODEL_IDS,
    RATIOS,
    SEEDREAM,
    SIZE_NAMES,
    SIZES,
    Files,
    Plan,
    Refused,
    check,
    image_size,
)

__all__ = [
    "B64_STYLES",
    "CHAT_JUNK_KINDS",
    "CHAT_MODELS",
    "CHAT_STREAM_KINDS",
    "FORMATS",
    "GEMINI_JUNK_KINDS",
    "JUNK_KINDS",
    "MAX_IMAGES",
    "MAX_PROMPT",
    "RATIOS",
    "SIZES",
    "SIZE_NAMES",
    "STREAM_KINDS",
    "ChatRecorded",
    "FakeImageAPI",
    "Recorded",
    "pixel_bomb_png",
]

JUNK_KINDS = (  # answers in the OpenAI-style shape (nano-banana-2, gpt-image-2, Seedream)
    "empty_data",
    "no_data",
    "neither_field",
    "not_json",
    "url_not_image",
    "url_404",
    "b64_not_image",
    "b64_invalid",
    # shapes no working gateway sends
    "url_broken",
    "url_not_string",
    "url_ftp",
    "b64_not_string",
    "data_not_list",
    "item_not_object",
    "deep_json",
    "not_object",
)
#: Gemini's refusals and odd answers: a blocked prompt (``promptFeedback.blockReason``, no candidates), a candidate
#: stopped for ``SAFETY`` / ``IMAGE_SAFETY`` (with a text part) / ``PROHIBITED_CONTENT`` and no image, a text-only
#: candidate. The kinds of ``JUNK_KINDS`` that have a Gemini meaning are answered in Gemini's shape too.
GEMINI_JUNK_KINDS = ("prompt_blocked", "safety", "image_safety", "prohibited_content", "text_only")
_GEMINI_SHARED_JUNK = (
    "empty_data",
    "no_data",
    "neither_field",
    "not_json",
    "b64_not_image",
    "b64_invalid",
    "b64_not_string",
    "data_not_list",
    "item_not_object",
    "deep_json",
    "not_object",
)
STREAM_KINDS = ("endless", "drip", "big_b64", "endless_url", "drip_url")
B64_STYLES = ("mime", "spaces", "no_padding", "urlsafe", "data_url", "escaped_slashes")

_ERROR_KINDS = {  # status -> (type, code) of an injected error's default body (gateway and OpenAI shapes)
    400: ("invalid_request_error", "invalid_parameter"),
    401: ("new_api_error", "invalid_api_key"),
    403: ("new_api_error", "insufficient_user_quota"),
    413: ("invalid_request_error", "prompt_too_long"),
    429: ("upstream_error", "rate_limit_exceeded"),
    504: ("upstream_error", "gateway_timeout"),
    524: ("upstream_error", "timeout"),
}
_CHAT_ERROR_KINDS = {  # status -> (type, code) of an injected chat error's default body (OpenAI's)
    400: ("invalid_request_error", "invalid_value"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("new_api_error", "insufficient_user_quota"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
    504: ("upstream_error", "gateway_timeout"),
}
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_HTML_PAGE = b"<!DOCTYPE html><html><head><title>Oops</title></head><body>not an image</body></html>"
_B64_INVALID = "@@not-base64@@"  # 9 alphabet characters: no base64 decoder accepts it
_IMAGE_CACHE: dict[tuple[int, int, bool, bool, str], bytes] = {}  # shared by all instances (and tests)
_SAFETY_RATINGS = [{"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "HIGH", "blocked": True}]
_ids = itertools.count(1)


@dataclass
class Recorded:
    """One API request as the fake saw it.

    ``body`` is the parsed JSON, or a multipart request's text fields (file parts other than ``image`` and
    ``mask`` as bytes). ``images`` are the references, decoded the same way for every model: multipart ``image``
    parts, Gemini's ``inline_data``, Seedream's data URIs (its https references are in ``image_urls``).
    """

    path: str
    headers: dict[str, str]
    body: dict
    images: list[bytes]
    started: float
    finished: float | None = None
    aborted: bool = False
    status: int | None = None
    request_id: str = ""  # the X-Request-Id answered (extra to the brief)
    image_types: list[str] = field(default_factory=list)  # the Content-Type / MIME type of each image
    model: str = ""  # the model id as the request named it (body or Gemini's path)
    prompt: str = ""  # the prompt, wherever the model's request carries it
    mask: bytes | None = None  # gpt-image-2's edit mask
    image_urls: list[str] = field(default_factory=list)


def _new_id() -> str:
    return f"{time.strftime('%Y%m%d%H%M%S')}{next(_ids):06d}{secrets.token_hex(4)}"


def _make_image(width: int, height: int, noise: bool, texture: bool = False, fmt: str = "png") -> bytes:
    """Random noise (incompressible), or a few shapes on a solid ground (compresses well), as ``fmt``.

    ``texture``: the shapes with 2 bits of noise on every channel, so the PNG is about as big as a
    real photo's (about 1.4 MB at 1K, 21 MB at 4K) instead of a few hundred KB.
    """
    if noise:
        img = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    else:
        img = Image.new("RGB", (width, height), (40, 90, 160))
        draw = ImageDraw.Draw(img)
        draw.rectangle((width // 8, height // 8, width // 2, height // 2), fill=(230, 180, 40))
        draw.ellipse((width // 2, height // 3, width - width // 8, height - height // 8), fill=(200, 60, 80))
        for i in range(0, width, max(width // 16, 1)):
            draw.line((i, 0, width - i, height), fill=(255, 255, 255), width=3)
        draw.text((10, 10), f"fake {width}x{height}", fill=(255, 255, 255))
        if texture:
            grain = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).point(lambda v: v & 3)
            img = ImageChops.add(img, grain)
    out = BytesIO()
    if fmt == "png":
        img.save(out, "PNG", compress_level=1)
    elif fmt == "webp":
        img.save(out, "WEBP", quality=80, method=0, exif=b"Exif\0\0")  # the extended format takes a stamp chunk
    else:
        img.save(out, "JPEG", quality=90)
    return out.getvalue()


def _stamped(data: bytes, fmt: str, value: str) -> bytes:
    """``data`` with ``value`` in a metadata block: distinct bytes, same pixels, no re-encoding."""
    raw = value.encode("latin-1")
    if fmt == "jpeg":  # a COM segment after SOI
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(raw) + 2) + raw + data[2:]
    if fmt == "webp":  # an unknown chunk at the end of an extended-format RIFF
        chunk = b"FAKE" + struct.pack("<I", len(raw)) + raw + b"\0" * (len(raw) % 2)
        return data[:4] + struct.pack("<I", len(data) - 8 + len(chunk)) + data[8:] + chunk
    return _with_text_chunk(data, "fake-request-id", value)


def _b64(data: bytes, style: str | None, ctype: str = "image/png") -> str:
    """Base64 as some gateway may write it: plain, or in one of ``B64_STYLES`` (all valid base64)."""
    text = base64.b64encode(data).decode("ascii")
    if style == "mime":
        return base64.encodebytes(data).decode("ascii")  # a line break every 76 characters
    if style == "spaces":
        return " ".join(text[i : i + 64] for i in range(0, len(text), 64))
    if style == "no_padding":
        return text.rstrip("=")
    if style == "urlsafe":
        return base64.urlsafe_b64encode(data).decode("ascii")
    if style == "data_url":
        return f"data:{ctype};base64,{text}"
    return text  # plain, or "escaped_slashes" (done on the JSON text)


def pixel_bomb_png(width: int = 12_000, height: int = 12_000) -> bytes:
    """A valid, tiny PNG (1-bit, all black) whose decoded bitmap is huge: 12000×12000 is 144 Mpx."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" * (1 + -(-width // 8))
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def single_idat(png: bytes) -> bytes:
    """The same PNG with all its pixel data in one IDAT chunk, as many encoders write it (Pillow writes 64 KB
    chunks): a reader that takes a chunk whole holds the whole image."""
    pos, kept, idat = 8, [], bytearray()
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        body = png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IDAT":
            idat += body
        else:
            kept.append((kind, body))
    out = bytearray(png[:8])
    for kind, body in kept:
        if kind == b"IEND":
            out += struct.pack(">I4s", len(idat), b"IDAT") + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
        out += struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", zlib.crc32(kind + body))
    return bytes(out)


def _with_text_chunk(png: bytes, key: str, value: str) -> bytes:
    """``png`` with a tEXt chunk inserted after IHDR: distinct bytes, same pixels, no re-encoding."""
    data = key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data
    chunk += struct.pack(">I", zlib.crc32(chunk[4:]) & 0xFFFFFFFF)
    at = 8 + 4 + 4 + 13 + 4  # signature + IHDR (length, type, 13 bytes of data, crc)
    return png[:at] + chunk + png[at:]


class _Misuse(Exception):
    """An injection with no meaning for the model asked: answered 418."""


class FakeImageAPI:
    """The fake server. ``await start()`` then use ``base_url``; ``await stop()`` at the end.

    ``models``: the image model ids the key's group may use (default: every one the fake knows); ``chat_models``:
    its chat model ids (default: ``CHAT_MODELS``; an id the fake does not list is served with default limits).
    """

    def __init__(
        self,
        api_key: str = "sk-test-key",
        models: Iterable[str] | None = None,
        chat_models: Iterable[str] | None = None,
    ) -> None:
        self.api_key = api_key
        self.models: set[str] = set(MODEL_IDS if models is None else models)
        self.chat_models: set[str] = set(CHAT_MODELS if chat_models is None else chat_models)
        self.base_url = ""
        self.requests: list[Recorded] = []
        self.inflight = 0
        self.max_inflight = 0
        self.delay: float = 0.0
        self.response_format: str | None = None  # forces url / b64_json answers (not Gemini's)
        self.noise: bool = False
        self.texture: bool = False  # photo-like grain: realistic PNG sizes (4K ~21 MB); ignored with noise
        self.key_limit: int | None = None  # requests of one API key worked on at once, like a real gateway
        self.key_limit_refuses = False  # over the limit: 429 at once instead of waiting for a slot
        self._key_slots: dict[tuple[str, int], asyncio.Semaphore] = {}  # (key, limit): a new limit, new slots
        self._fails: deque[tuple[int, dict | str | None, dict | None]] = deque()
        self._junk: deque[str] = deque()
        self._sizes: deque[tuple[int, int]] = deque()
        self._delays: deque[float] = deque()
        self._streams: deque[tuple[str, int]] = deque()
        self._images: deque[tuple[bytes, str]] = deque()
        self._fewer: deque[int] = deque()
        self.b64_style: str | None = None  # how base64 answers are written: one of B64_STYLES, None = plain
        self.drip_interval = 1.0  # seconds between the bytes of a "drip" answer
        self._files: dict[str, tuple[bytes, str]] = {}  # "<id>.<ext>" -> (body, content type)
        self._served: dict[str, list[bytes]] = {}  # request id -> image bytes, in answer order
        self._pending: dict[tuple[int, int, bool, bool, str], asyncio.Future[bytes]] = {}
        self.chat_requests: list[ChatRecorded] = []
        self.chat_inflight = 0
        self.chat_max_inflight = 0
        self.chat_delay: float = 0.0  # seconds every chat answer takes (image answers take ``delay``)
        self.chat_reply: Callable[[ChatPlan], str] = rewrite  # the default answer's text
        self._chat_replies: deque[ChatReply] = deque()
        self._chat_fails: deque[tuple[int, dict | str | None, dict | None]] = deque()
        self._chat_junk: deque[str] = deque()
        self._chat_streams: deque[tuple[str, int]] = deque()
        self._chat_delays: deque[float] = deque()
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port and set ``base_url``."""
        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/v1/images/generations", self._generations)
        app.router.add_post("/v1/images/edits", self._edits)
        app.router.add_post("/v1beta/models/{target}", self._generate_content)
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        app.router.add_get("/files/{name}", self._file)
        app.on_response_prepare.append(self._stamp)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Close the server (handlers still running are cancelled)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeImageAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---- test controls ---------------------------------------------------------------------

    def fail_next(
        self, status: int, body: dict | str | None = None, times: int = 1, headers: dict | None = None
    ) -> None:
        """Answer the next ``times`` requests with ``status``.

        ``body`` None: an error in the model's shape (gateway and OpenAI: a message ending in
        "(request id: <id>)"; Gemini: Google's ``{code, message, status}``); a dict: sent as JSON;
        a str: sent raw (text/html if it starts with "<", else text/plain). ``headers`` are added.
        """
        self._fails.extend([(status, body, headers)] * times)

    def junk_next(self, kind: str, times: int = 1) -> None:
        """Answer the next ``times`` requests with a malformed success or a refusal; ``kind`` in ``JUNK_KINDS``
        or ``GEMINI_JUNK_KINDS``."""
        if kind not in JUNK_KINDS + GEMINI_JUNK_KINDS:
            raise ValueError(f"unknown junk kind {kind!r}; one of {JUNK_KINDS + GEMINI_JUNK_KINDS}")
        self._junk.extend([kind] * times)

    def size_next(self, width: int, height: int, times: int = 1) -> None:
        """Serve the next ``times`` images at ``width`` x ``height`` instead of the size asked for."""
        self._sizes.extend([(width, height)] * times)

    def stream_next(self, kind: str, size: int = 0, times: int = 1) -> None:
        """Answer the next ``times`` requests with a hostile stream, ``kind`` in ``STREAM_KINDS``:
        ``endless``: a 200 JSON answer whose base64 image never ends; ``endless_url``: a ``url`` answer whose
        file never ends; ``drip``: a valid answer, one byte per ``drip_interval`` seconds (``drip_url``: its
        file does that); ``big_b64``: a base64 image of ``size`` zero bytes, written as it is encoded (never held
        whole). Gemini has no ``url`` answers."""
        if kind not in STREAM_KINDS:
            raise ValueError(f"unknown stream kind {kind!r}; one of {STREAM_KINDS}")
        self._streams.extend([(kind, size)] * times)

    def image_next(self, data: bytes, content_type: str = "image/png", times: int = 1) -> None:
        """Serve exactly ``data`` as the next ``times`` images (an MPO, a rotated JPEG, a pixel bomb…)."""
        self._images.extend([(data, content_type)] * times)

    def fewer_next(self, count: int, times: int = 1) -> None:
        """The next ``times`` successful answers bring ``count`` images, however many were asked for (a gateway's
        filter drops some of an `n`; the vendors promise no more than `n`)."""
        self._fewer.extend([count] * times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """The next ``times`` requests take ``seconds`` instead of ``delay``."""
        self._delays.extend([seconds] * times)

    # ---- chat test controls (their own queues: an image request never takes them, nor a chat request the others)

    def chat_next(self, content: str | None, finish_reason: str = "stop", times: int = 1) -> None:
        """Answer the next ``times`` chat requests with exactly ``content`` (None: null; "" or a huge text as they
        are, never cut) and ``finish_reason`` (``length``, ``content_filter``…)."""
        if finish_reason not in FINISH_REASONS:
            raise ValueError(f"unknown finish_reason {finish_reason!r}; one of {FINISH_REASONS}")
        self._chat_replies.extend([ChatReply(content, None, finish_reason)] * times)

    def chat_refuse_next(self, refusal: str = "I'm sorry, I can't help with that.", times: int = 1) -> None:
        """The model refuses the next ``times`` chat requests as OpenAI writes it: ``message.refusal`` set,
        ``content`` null, ``finish_reason`` ``stop``."""
        self._chat_replies.extend([ChatReply(None, refusal)] * times)

    def chat_fail_next(
        self, status: int, body: dict | str | None = None, times: int = 1, headers: dict | None = None
    ) -> None:
        """Answer the next ``times`` chat requests with ``status``: ``body`` None is OpenAI's ``{"error": {message
        ("injected <status> (request id: <id>)"), type, param, code}}`` (429 ``rate_limit_exceeded``, 401
        ``invalid_api_key``…); a dict is sent as JSON, a str raw (text/html if it starts with "<")."""
        self._chat_fails.extend([(status, body, headers)] * times)

    def chat_junk_next(self, kind: str, times: int = 1) -> None:
        """Answer the next ``times`` chat requests with a malformed 200, ``kind`` in ``CHAT_JUNK_KINDS``."""
        if kind not in CHAT_JUNK_KINDS:
            raise ValueError(f"unknown chat junk kind {kind!r}; one of {CHAT_JUNK_KINDS}")
        self._chat_junk.extend([kind] * times)

    def chat_stream_next(self, kind: str, size: int = 0, times: int = 1) -> None:
        """Answer the next ``times`` chat requests with a hostile 200 stream, ``kind`` in ``CHAT_STREAM_KINDS``:
        ``endless``, ``drip`` (one byte per ``drip_interval``) or ``big`` (a content of ``size`` characters)."""
        if kind not in CHAT_STREAM_KINDS:
            raise ValueError(f"unknown chat stream kind {kind!r}; one of {CHAT_STREAM_KINDS}")
        self._chat_streams.extend([(kind, size)] * times)

    def chat_delay_next(self, seconds: float, times: int = 1) -> None:
        """The next ``times`` valid chat requests take ``seconds`` instead of ``chat_delay``."""
        self._chat_delays.extend([seconds] * times)

    # ---- image lookups ---------------------------------------------------------------------

    def image_for(self, request: Recorded) -> bytes | None:
        """The exact image bytes served for ``request`` (its first, for gpt-image-2's ``n``; None if none)."""
        return next(iter(self._served.get(request.request_id, [])), None)

    def images_for(self, request: Recorded) -> list[bytes]:
        """Every image served for ``request``, in answer order."""
        return list(self._served.get(request.request_id, []))

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        """Poll ``predicate()`` every 20 ms; return its first truthy value, AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await asyncio.sleep(0.02)

    # ---- handlers --------------------------------------------------------------------------

    async def _stamp(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Request-Id", _new_id())  # API answers already have theirs

    async def _file(self, request: web.Request) -> web.StreamResponse:
        found = self._files.get(request.match_info["name"])
        if found is None:
            return web.Response(status=404, text="404 page not found")
        if found[0] == b"endless":
            return await self._write_stream(request, b"\x89PNG\r\n\x1a\n", itertools.repeat(b"\0" * 65536))
        if found[1] == "drip":
            drip = (found[0][i : i + 1] for i in range(len(found[0])))
            return await self._write_stream(request, b"", drip, pause=self.drip_interval)
        return web.Response(body=found[0], content_type=found[1])

    async def _generations(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "generations")

    async def _edits(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "edits")

    async def _generate_content(self, request: web.Request) -> web.StreamResponse:
        return await self._handle(request, "gemini")

    async def _handle(self, request: web.Request, route: str) -> web.StreamResponse:
        rid = _new_id()
        rec = Recorded(request.path, dict(request.headers), {}, [], time.monotonic(), request_id=rid)
        self.requests.append(rec)
        delay = self._delays.popleft() if self._delays else self.delay  # taken on arrival: an aborted upload used it
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            try:
                files = Files()
                complaint = await (
                    self._read_multipart(request, rec, files) if route == "edits" else self._read_json(request, rec)
                )
                plan = self._plan(request, rec, route, complaint, files)
                shape = ERROR_SHAPE[plan.model]
                rec.prompt, rec.image_urls = plan.prompt, plan.image_urls
                rec.images, rec.image_types = plan.images, plan.image_types
                async with self._key_slot(request, shape):
                    response = await self._answer(rec, request, delay, plan)
            except Refused as e:
                response = self._error(e, rid)
            except _Misuse as e:
                response = web.Response(status=418, text=f"fake image API misused: {e}")
            rec.status = response.status
            response.headers["X-Request-Id"] = rid
            return response
        except asyncio.CancelledError:
            rec.aborted = True
            raise
        finally:
            rec.finished = time.monotonic()
            self.inflight -= 1

    async def _read_json(self, request: web.Request, rec: Recorded) -> str | None:
        """Fill ``rec.body``; return a complaint if the body is not a JSON object."""
        try:
            body = await request.json()
        except ValueError:
            return "invalid JSON body"
        if not isinstance(body, dict):
            return "request body must be a JSON object"
        rec.body = body
        rec.prompt = body["prompt"] if isinstance(body.get("prompt"), str) else ""
        return None

    async def _read_multipart(self, request: web.Request, rec: Recorded, files: Files) -> str | None:
        """Fill ``rec.body`` (text fields; other file parts as bytes) and ``files``; return a complaint if not
        multipart (a JSON body is still read, so the model can be routed)."""
        if request.content_type == "application/json":
            await self._read_json(request, rec)
            return "Content-Type must be multipart/form-data"
        if not request.content_type.startswith("multipart/"):
            return "Content-Type must be multipart/form-data"
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name == "image":
                files.image_types.append(part.headers.get("Content-Type", ""))
                files.images.append(bytes(await part.read()))
            elif part.name == "mask":
                rec.mask = files.mask = bytes(await part.read())
            elif part.name and part.filename is not None:
                rec.body[part.name] = bytes(await part.read())
            elif part.name:
                rec.body[part.name] = await part.text()
        rec.images, rec.image_types = files.images, files.image_types
        rec.prompt = rec.body["prompt"] if isinstance(rec.body.get("prompt"), str) else ""
        return None

    def _plan(self, request: web.Request, rec: Recorded, route: str, complaint: str | None, files: Files) -> Plan:
        """Route the request to its model's rules, refusing like the gateway: auth first, then the body's form,
        then the model, then the model's rules."""
        if route == "gemini":
            return self._plan_gemini(request, rec, complaint)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise Refused(401, "无效的令牌", "gateway", "new_api_error", "invalid_api_key")
        if complaint and not rec.body:
            raise Refused(400, complaint)
        model_id = rec.body.get("model")
        rec.model = model_id if isinstance(model_id, str) else ""
        if not model_id:
            raise Refused(400, "model is required")
        model = MODEL_IDS.get(model_id) if isinstance(model_id, str) else None
        if model is None or model == GEMINI:
            raise Refused(400, f"model {model_id} is not supported on {request.path}", code="model_not_found")
        if model_id not in self.models:
            raise Refused(
                503, f"当前分组 default 下对于模型 {model_id} 无可用渠道", type_="new_api_error", code="model_not_found"
            )
        if model == SEEDREAM and route == "edits":
            raise Refused(
                404,
                f"model {model_id} does not support {request.path}: send its references as `image` "
                "to /v1/images/generations",
                code="unsupported_endpoint",
            )
        if complaint:
            raise Refused(400, complaint)
        return check(model, route == "edits", rec.body, files)

    def _plan_gemini(self, request: web.Request, rec: Recorded, complaint: str | None) -> Plan:
        if request.headers.get("x-goog-api-key") != self.api_key:
            raise Refused(401, "API key not valid. Please pass a valid API key.", "google")
        model_id, _, method = request.match_info["target"].partition(":")
        rec.model = model_id
        if method != "generateContent":
            raise Refused(
                404, f"Method {method!r} of models/{model_id} is not found (only generateContent is)", "google"
            )
        if complaint:
            raise Refused(400, f"Invalid JSON payload received: {complaint}", "google")
        if MODEL_IDS.get(model_id) != GEMINI:
            raise Refused(400, f"model {model_id} is not supported on generateContent", "google")
        if model_id not in self.models:
            raise Refused(503, f"当前分组 default 下对于模型 {model_id} 无可用渠道", "google")
        plan = check(GEMINI, False, rec.body, Files())
        rec.prompt = plan.prompt
        return plan

    def _key_slot(self, request: web.Request, shape: str) -> contextlib.AbstractAsyncContextManager[Any]:
        """One of the key's ``key_limit`` slots (none without a limit); a full key waits or is refused. The key is
        the same whichever header carries it, so every model shares its slots."""
        if self.key_limit is None:
            return contextlib.nullcontext()
        key = request.headers.get("x-goog-api-key") if shape == "google" else request.headers.get("Authorization")
        key = (key or "").removeprefix("Bearer ")
        slots = self._key_slots.setdefault((key, self.key_limit), asyncio.Semaphore(self.key_limit))
        if self.key_limit_refuses and slots.locked():
            raise Refused(
                429,
                f"concurrency limit of {self.key_limit} for this key reached",
                shape,
                "upstream_error",
                "rate_limit_exceeded",
            )
        return slots

    async def _answer(self, rec: Recorded, request: web.Request, delay: float, plan: Plan) -> web.StreamResponse:
        """Sleep the delay, then answer an injected failure, a hostile stream, injected junk, or the images."""
        if delay > 0:
            await asyncio.sleep(delay)
        rid = rec.request_id
        if self._fails:
            return self._injected_failure(ERROR_SHAPE[plan.model], rid, *self._fails.popleft())
        fmt = self.response_format or plan.answer  # Gemini answers inline data whatever is asked
        if self._streams:
            return await self._hostile_stream(request, rec, plan, *self._streams.popleft())
        if self._junk:
            kind = self._junk.popleft()
            return self._gemini_junk(kind, rid) if plan.model == GEMINI else self._junk_answer(kind, rid)
        count = min(self._fewer.popleft(), len(plan.sizes)) if self._fewer else len(plan.sizes)
        pictures = [await self._picture(plan, rid, i) for i in range(count)]
        self._served[rid] = [data for data, _ in pictures]
        answer = self._success(plan, rec, fmt, pictures)
        if self.b64_style == "escaped_slashes" and (fmt == "b64_json" or plan.model == GEMINI):
            text = json.dumps(answer).replace("/", "\\/")
            return web.Response(text=text, content_type="application/json")
        return web.json_response(answer)

    def _injected_failure(
        self,
        shape: str,
        rid: str,
        status: int,
        body: dict | str | None,
        headers: dict | None,
        kinds: dict[int, tuple[str, str | None]] = _ERROR_KINDS,
    ) -> web.Response:
        if body is None:
            type_, code = kinds.get(status, ("upstream_error", "bad_response_status_code"))
            response = self._error(Refused(status, f"injected {status}", shape, type_, code), rid)
        elif isinstance(body, str):
            ctype = "text/html" if body.lstrip().startswith("<") else "text/plain"
            response = web.Response(status=status, text=body, content_type=ctype)
        else:
            response = web.json_response(body, status=status)
        response.headers.update(headers or {})
        return response

    async def _picture(self, plan: Plan, rid: str, index: int) -> tuple[bytes, str]:
        """Image ``index`` of the answer: ``image_next``'s bytes, else the model's format at the override's or the
        plan's size, stamped with the request id so every image is distinct."""
        if self._images:
            return self._images.popleft()
        width, height = self._sizes.popleft() if self._sizes else plan.sizes[index]
        base = await self._base_image(width, height, plan.fmt)
        return _stamped(base, plan.fmt, rid if index == 0 else f"{rid}-{index}"), f"image/{plan.fmt}"

    def _success(self, plan: Plan, rec: Recorded, fmt: str, pictures: list[tuple[bytes, str]]) -> dict:
        rid = rec.request_id
        if plan.model == GEMINI:
            data, ctype = pictures[0]
            parts: list[dict] = [{"text": f"Here is {plan.prompt[:40]!r}."}] if plan.text else []
            parts.append({"inlineData": {"mimeType": ctype, "data": _b64(data, self.b64_style, ctype)}})
            return {
                "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": self._gemini_usage(plan),
                "modelVersion": GEMINI,
                "responseId": rid,
            }
        items = [
            self._item(fmt, self._file_name(rid, i, plan.fmt), data, ctype) for i, (data, ctype) in enumerate(pictures)
        ]
        answer: dict[str, Any] = {"created": int(time.time()), "data": items}
        w, h = plan.sizes[0]
        if plan.model == GPT:
            answer.update(
                background="opaque",
                output_format=plan.fmt,
                quality=rec.body.get("quality", "auto"),
                size=f"{w}x{h}",
                usage={"input_tokens": 50, "output_tokens": 1056 * len(items), "total_tokens": 50 + 1056 * len(items)},
            )
        elif plan.model == SEEDREAM:
            for item, (data, _) in zip(items, pictures):
                found = image_size(data)  # image_next may serve anything
                item["size"] = "{}x{}".format(*(found[1] if found else (w, h)))
            answer.update(
                model=rec.model,
                usage={"generated_images": len(items), "output_tokens": w * h // 256, "total_tokens": w * h // 256},
            )
        return answer

    @staticmethod
    def _gemini_usage(plan: Plan) -> dict:
        out = GEMINI_TOKENS[plan.tier]
        return {"promptTokenCount": 12, "candidatesTokenCount": out, "totalTokenCount": 12 + out}

    @staticmethod
    def _file_name(rid: str, index: int, ext: str) -> str:
        return f"{rid}.{ext}" if index == 0 else f"{rid}-{index}.{ext}"

    def _item(self, fmt: str, name: str, payload: bytes, ctype: str = "image/png") -> dict:
        if fmt == "b64_json":
            return {"b64_json": _b64(payload, self.b64_style, ctype)}
        self._files[name] = (payload, ctype)
        return {"url": f"{self.base_url}/files/{name}"}

    async def _hostile_stream(
        self, request: web.Request, rec: Recorded, plan: Plan, kind: str, size: int
    ) -> web.StreamResponse:
        rid = rec.request_id
        gemini = plan.model == GEMINI
        if gemini:
            head = b'{"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "'
            tail = b'"}}]}, "finishReason": "STOP"}]}'
        else:
            head, tail = b'{"data": [{"b64_json": "', b'"}]}'
        if kind in ("endless_url", "drip_url"):
            if gemini:
                raise _Misuse(f"stream kind {kind!r} has no meaning for {plan.model} (it answers inline data)")
            name = self._file_name(rid, 0, plan.fmt)
            if kind == "endless_url":
                self._files[name] = (b"endless", "image/png")
            else:
                png = _with_text_chunk(await self._base_image(64, 64, "png"), "fake-request-id", rid)
                self._served[rid] = [png]
                self._files[name] = (png, "drip")
            return web.json_response({"data": [{"url": f"{self.base_url}/files/{name}"}]})
        if kind == "endless":
            return await self._write_stream(request, head, itertools.repeat(b"A" * 65536), rid)
        if kind == "big_b64":
            zeros = base64.b64encode(bytes(3 * 65536))  # whole 3-byte groups: the pieces join into one base64
            pieces = itertools.chain(
                itertools.repeat(zeros, size // (3 * 65536)), [base64.b64encode(bytes(size % (3 * 65536))), tail]
            )
            return await self._write_stream(request, head, pieces, rid)
        png = _with_text_chunk(await self._base_image(64, 64, "png"), "fake-request-id", rid)
        self._served[rid] = [png]
        body = head + base64.b64encode(png) + tail
        drip = (body[i : i + 1] for i in range(len(body)))
        return await self._write_stream(request, b"", drip, rid, pause=self.drip_interval)

    async def _write_stream(
        self, request: web.Request, head: bytes, pieces: Any, rid: str = "", pause: float = 0.0
    ) -> web.StreamResponse:
        """A 200 written piece by piece (no length, so the reader cannot know the end) until the pieces run out
        or the reader hangs up."""
        response = web.StreamResponse(headers={"Content-Type": "application/json", "X-Request-Id": rid or _new_id()})
        await response.prepare(request)
        try:
            await response.write(head)
            for piece in pieces:
                if pause:
                    await asyncio.sleep(pause)
                await response.write(piece)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the reader went away, as it should with an endless answer
        return response

    def _junk_answer(self, kind: str, rid: str) -> web.Response:
        if kind in GEMINI_JUNK_KINDS:
            raise _Misuse(f"junk kind {kind!r} is Gemini's; this model answers {{'data': [...]}}")
        if kind == "not_json":
            return web.Response(body=_HTML_PAGE, content_type="text/html")
        answer: dict[str, Any] = {"created": int(time.time())}
        if kind == "empty_data":
            answer["data"] = []
        elif kind == "neither_field":
            answer["data"] = [{"revised_prompt": "x"}]
        elif kind == "url_not_image":  # a .png link that serves an HTML page
            answer["data"] = [self._item("url", f"{rid}.png", _HTML_PAGE, "text/html")]
        elif kind == "url_404":  # never stored, so GET answers 404
            answer["data"] = [{"url": f"{self.base_url}/files/{rid}.png"}]
        elif kind == "b64_not_image":
            answer["data"] = [self._item("b64_json", "", _HTML_PAGE)]
        elif kind == "b64_invalid":
            answer["data"] = [{"b64_json": _B64_INVALID}]
        elif kind == "url_broken":
            answer["data"] = [{"url": "http://[::1"}]
        elif kind == "url_not_string":
            answer["data"] = [{"url": {"href": "https://cdn.example/x.png"}}]
        elif kind == "url_ftp":
            answer["data"] = [{"url": "ftp://cdn.example/x.png"}]
        elif kind == "b64_not_string":
            answer["data"] = [{"b64_json": [1, 2, 3]}]
        elif kind == "data_not_list":
            answer["data"] = {"b64_json": "iVBORw0KGgo="}
        elif kind == "item_not_object":
            answer["data"] = ["iVBORw0KGgo="]
        elif kind == "deep_json":
            return web.Response(text="[" * 100_000 + "]" * 100_000, content_type="application/json")
        elif kind == "not_object":
            return web.json_response([answer])
        return web.json_response(answer)  # "no_data": no "data" key at all

    def _gemini_junk(self, kind: str, rid: str) -> web.Response:
        """Gemini's refusals (``GEMINI_JUNK_KINDS``) and the shared junk kinds in Gemini's shape."""
        if kind not in GEMINI_JUNK_KINDS + _GEMINI_SHARED_JUNK:
            raise _Misuse(f"junk kind {kind!r} has no meaning for {GEMINI} (it answers inline data)")
        if kind == "not_json":
            return web.Response(body=_HTML_PAGE, content_type="text/html")
        if kind == "deep_json":
            return web.Response(text="[" * 100_000 + "]" * 100_000, content_type="application/json")
        usage = {"promptTokenCount": 12, "totalTokenCount": 12}
        answer: dict[str, Any] = {"usageMetadata": usage, "modelVersion": GEMINI, "responseId": rid}

        def candidate(finish: str, parts: list | None = None, **extra: Any) -> list[dict]:
            content = {} if parts is None else {"content": {"role": "model", "parts": parts}}
            return [{**content, "finishReason": finish, "index": 0, **extra}]

        def inline(data: Any) -> list[dict]:
            return [{"inlineData": {"mimeType": "image/png", "data": data}}]

        if kind == "prompt_blocked":
            answer["promptFeedback"] = {"blockReason": "SAFETY", "safetyRatings": _SAFETY_RATINGS}
        elif kind == "safety":
            answer["candidates"] = candidate("SAFETY", safetyRatings=_SAFETY_RATINGS)
        elif kind == "image_safety":
            answer["candidates"] = candidate("IMAGE_SAFETY", [{"text": "I can't create that image."}])
        elif kind == "prohibited_content":
            answer["candidates"] = candidate("PROHIBITED_CONTENT")
        elif kind in ("text_only", "neither_field"):
            answer["candidates"] = candidate("STOP", [{"text": "A picture of that would show a quiet scene."}])
        elif kind == "empty_data":
            answer["candidates"] = []
        elif kind == "b64_not_image":
            answer["candidates"] = candidate("STOP", inline(base64.b64encode(_HTML_PAGE).decode()))
        elif kind == "b64_invalid":
            answer["candidates"] = candidate("STOP", inline(_B64_INVALID))
        elif kind == "b64_not_string":
            answer["candidates"] = candidate("STOP", inline([1, 2, 3]))
        elif kind == "data_not_list":
            answer["candidates"] = candidate("STOP", inline("iVBORw0KGgo="))[0]
        elif kind == "item_not_object":
            answer["candidates"] = ["iVBORw0KGgo="]
        elif kind == "not_object":
            return web.json_response([answer])
        return web.json_response(answer)  # "no_data": no candidates, no promptFeedback

    async def _base_image(self, width: int, height: int, fmt: str) -> bytes:
        """The cached image for this size and format, made once in a worker thread."""
        key = (width, height, self.noise, self.texture and not self.noise, fmt)
        if key in _IMAGE_CACHE:
            return _IMAGE_CACHE[key]
        future = self._pending.get(key)
        if future is None:
            future = self._pending[key] = asyncio.ensure_future(asyncio.to_thread(_make_image, *key))
            future.add_done_callback(
                lambda f: f.cancelled() or f.exception() or _IMAGE_CACHE.setdefault(key, f.result())
            )
        return await asyncio.shield(future)  # a cancelled request does not spoil the shared work

    # ---- chat ------------------------------------------------------------------------------

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        rid = _new_id()
        rec = ChatRecorded(request.path, dict(request.headers), {}, time.monotonic(), request_id=rid)
        self.chat_requests.append(rec)
        self.chat_inflight += 1
        self.chat_max_inflight = max(self.chat_max_inflight, self.chat_inflight)
        try:
            try:
                complaint = await self._read_chat(request, rec)
                self._chat_auth(request)
                if complaint:
                    raise Refused(400, complaint, "openai", "invalid_request_error", None)
                plan = check_chat(rec.body, self.chat_models)
                rec.system, rec.user = plan.system, plan.user
                async with self._key_slot(request, "openai"):
                    response = await self._chat_answer(rec, request, plan)
            except Refused as e:
                response = self._error(e, rid)
            rec.status = response.status
            response.headers["X-Request-Id"] = rid
            return response
        except asyncio.CancelledError:
            rec.aborted = True
            raise
        finally:
            rec.finished = time.monotonic()
            self.chat_inflight -= 1

    @staticmethod
    async def _read_chat(request: web.Request, rec: ChatRecorded) -> str | None:
        """Fill ``rec``'s body, model, messages and params; return a complaint if the body is no JSON object."""
        try:
            body = await request.json()
        except ValueError:
            return (
                "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload, but "
                "what was sent was not valid JSON."
            )
        if not isinstance(body, dict):
            return "Invalid type for request body: expected an object."
        rec.body = body
        rec.model = body["model"] if isinstance(body.get("model"), str) else ""
        rec.messages = body["messages"] if isinstance(body.get("messages"), list) else []
        rec.params = {k: v for k, v in body.items() if k not in ("model", "messages")}
        return None

    def _chat_auth(self, request: web.Request) -> None:
        """OpenAI's 401s: no key, or a wrong one (shown masked, as OpenAI does)."""
        header = request.headers.get("Authorization")
        if header == f"Bearer {self.api_key}":
            return
        if not header:
            raise Refused(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "openai",
                "invalid_request_error",
                None,
            )
        key = header.removeprefix("Bearer ")
        shown = f"{key[:3]}{'*' * (len(key) - 7)}{key[-4:]}" if len(key) > 10 else "*" * len(key)
        raise Refused(
            401,
            f"Incorrect API key provided: {shown}. You can find your API key at https://www.dmxapi.cn/token.",
            "openai",
            "invalid_request_error",
            "invalid_api_key",
        )

    async def _chat_answer(self, rec: ChatRecorded, request: web.Request, plan: ChatPlan) -> web.StreamResponse:
        """Sleep the delay, then answer an injected failure, a hostile stream, junk, an injected reply, or the
        default reply (``chat_reply``)."""
        delay = self._chat_delays.popleft() if self._chat_delays else self.chat_delay
        if delay > 0:
            await asyncio.sleep(delay)
        rid, created = rec.request_id, int(time.time())
        if self._chat_fails:
            return self._injected_failure("openai", rid, *self._chat_fails.popleft(), kinds=_CHAT_ERROR_KINDS)
        if self._chat_streams:
            kind, size = self._chat_streams.popleft()
            head, pieces = stream_pieces(kind, plan, rid, created, size)
            return await self._write_stream(
                request, head, pieces, rid, pause=self.drip_interval if kind == "drip" else 0.0
            )
        if self._chat_junk:
            text, ctype = junk(self._chat_junk.popleft(), plan, rid, created)
            return web.Response(text=text, content_type=ctype)
        if self._chat_replies:
            reply = self._chat_replies.popleft()
        else:
            content, finish = default_content(plan, self.chat_reply(plan))
            reply = ChatReply(content, finish_reason=finish)
        rec.reply = reply.content
        return web.json_response(completion(plan, rid, created, reply))

    @staticmethod
    def _error(e: Refused, rid: str) -> web.Response:
        """The error body in the model's shape; the gateway's and OpenAI's messages end with the request id, as the
        gateway writes them."""
        if e.shape == "google":
            error: dict[str, Any] = {
                "code": e.status,
                "message": e.message,
                "status": GOOGLE_STATUS.get(e.status, "UNKNOWN"),
            }
        else:
            error = {"message": f"{e.message} (request id: {rid})", "type": e.type, "code": e.code}
            if e.shape == "openai":
                error = {"message": error["message"], "type": e.type, "param": e.param, "code": e.code}
        return web.json_response({"error": error}, status=e.status)
