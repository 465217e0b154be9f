"""A fake of DMXAPI's OpenAI-style image API (see docs/IMAGE-API.md), served over real HTTP.

``FakeImageAPI`` listens on 127.0.0.1 (a free port) and answers

* ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart, one part
  named ``image`` per picture) with ``{"created": ..., "data": [{"url"|"b64_json": ...}]}``;
* ``GET /files/<id>.png`` with the image a ``url`` answer points at.

Every request is recorded, answers carry ``X-Request-Id``, and tests can inject failures,
junk answers, other image sizes and delays for the next requests.

Per request, after the body is read: auth (401), then validation (400/413/503), then the
delay (``delay_next`` override, else ``delay``), then an injected failure (``fail_next``),
else a hostile stream (``stream_next``: endless, dripping, oversized base64), else injected junk
(``junk_next``), else an image (exact bytes from ``image_next``, else a PNG of the size from
``size_next`` or ``SIZES``), its base64 written in ``b64_style`` when that is set.
Requests refused by auth or validation consume none of the injection queues.
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
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from aiohttp import web
from PIL import Image, ImageChops, ImageDraw

_PX = {
    "1:1": ((1024, 1024), (2048, 2048), (4096, 4096)),
    "2:3": ((848, 1264), (1696, 2528), (3392, 5056)),
    "3:2": ((1264, 848), (2528, 1696), (5056, 3392)),
    "3:4": ((896, 1200), (1792, 2400), (3584, 4800)),
    "4:3": ((1200, 896), (2400, 1792), (4800, 3584)),
    "4:5": ((928, 1152), (1856, 2304), (3712, 4608)),
    "5:4": ((1152, 928), (2304, 1856), (4608, 3712)),
    "9:16": ((768, 1376), (1536, 2752), (3072, 5504)),
    "16:9": ((1376, 768), (2752, 1536), (5504, 3072)),
    "21:9": ((1584, 672), (3168, 1344), (6336, 2688)),
}
#: (aspect_ratio, size) -> (width, height), the pixel table of docs/IMAGE-API.md.
SIZES: dict[tuple[str, str], tuple[int, int]] = {
    (ratio, size): px for ratio, row in _PX.items() for size, px in zip(("1K", "2K", "4K"), row)
}
RATIOS = tuple(_PX)
SIZE_NAMES = ("1K", "2K", "4K")
FORMATS = ("url", "b64_json")
JUNK_KINDS = (
    "empty_data", "no_data", "neither_field", "not_json",
    "url_not_image", "url_404", "b64_not_image", "b64_invalid",
    # shapes no working gateway sends
    "url_broken", "url_not_string", "url_ftp", "b64_not_string", "data_not_list", "item_not_object", "deep_json",
    "not_object",
)
STREAM_KINDS = ("endless", "drip", "big_b64", "endless_url", "drip_url")
B64_STYLES = ("mime", "spaces", "no_padding", "urlsafe", "data_url", "escaped_slashes")
MAX_PROMPT = 32_000
MAX_IMAGES = 14

_ERROR_KINDS = {  # status -> (type, code) of an injected error's default body
    400: ("invalid_request_error", "invalid_parameter"),
    401: ("new_api_error", "invalid_api_key"),
    403: ("new_api_error", "insufficient_user_quota"),
    413: ("invalid_request_error", "prompt_too_long"),
    429: ("upstream_error", "rate_limit_exceeded"),
    504: ("upstream_error", "gateway_timeout"),
    524: ("upstream_error", "timeout"),
}
_HTML_PAGE = b"<!DOCTYPE html><html><head><title>Oops</title></head><body>not an image</body></html>"
_B64_INVALID = "@@not-base64@@"  # 9 alphabet characters: no base64 decoder accepts it
_PNG_CACHE: dict[tuple[int, int, bool, bool], bytes] = {}  # shared by all instances (and tests)
_ids = itertools.count(1)


@dataclass
class Recorded:
    """One API request as the fake saw it."""

    path: str
    headers: dict[str, str]
    body: dict
    images: list[bytes]
    started: float
    finished: float | None = None
    aborted: bool = False
    status: int | None = None
    request_id: str = ""  # the X-Request-Id answered (extra to the brief)
    image_types: list[str] = field(default_factory=list)  # the Content-Type of each image part


def _new_id() -> str:
    return f"{time.strftime('%Y%m%d%H%M%S')}{next(_ids):06d}{secrets.token_hex(4)}"


def _make_png(width: int, height: int, noise: bool, texture: bool = False) -> bytes:
    """Random noise (incompressible), or a few shapes on a solid ground (compresses well).

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
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


def _b64(data: bytes, style: str | None) -> str:
    """Base64 as some gateway may write it: plain, or in one of ``B64_STYLES`` (all valid base64)."""
    text = base64.b64encode(data).decode("ascii")
    if style == "mime":
        return base64.encodebytes(data).decode("ascii")  # a line break every 76 characters
    if style == "spaces":
        return " ".join(text[i:i + 64] for i in range(0, len(text), 64))
    if style == "no_padding":
        return text.rstrip("=")
    if style == "urlsafe":
        return base64.urlsafe_b64encode(data).decode("ascii")
    if style == "data_url":
        return "data:image/png;base64," + text
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
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
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


class _Refused(Exception):
    """An answer decided before generation (auth, validation)."""

    def __init__(self, status: int, message: str, type_: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code


class FakeImageAPI:
    """The fake server. ``await start()`` then use ``base_url``; ``await stop()`` at the end."""

    def __init__(self, api_key: str = "sk-test-key", model: str = "nano-banana-2") -> None:
        self.api_key = api_key
        self.model = model
        self.base_url = ""
        self.requests: list[Recorded] = []
        self.inflight = 0
        self.max_inflight = 0
        self.delay: float = 0.0
        self.response_format: str | None = None
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
        self.b64_style: str | None = None  # how base64 answers are written: one of B64_STYLES, None = plain
        self.drip_interval = 1.0  # seconds between the bytes of a "drip" answer
        self._files: dict[str, tuple[bytes, str]] = {}  # "<id>.png" -> (body, content type)
        self._served: dict[str, bytes] = {}  # request id -> image bytes
        self._pending: dict[tuple[int, int, bool, bool], asyncio.Future[bytes]] = {}
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a free port and set ``base_url``."""
        app = web.Application(client_max_size=1 << 30)
        app.router.add_post("/v1/images/generations", self._generations)
        app.router.add_post("/v1/images/edits", self._edits)
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

        ``body`` None: an OpenAI-style error ending in "(request id: <id>)"; a dict: sent as JSON;
        a str: sent raw (text/html if it starts with "<", else text/plain). ``headers`` are added.
        """
        self._fails.extend([(status, body, headers)] * times)

    def junk_next(self, kind: str, times: int = 1) -> None:
        """Answer the next ``times`` requests with a malformed success; ``kind`` in ``JUNK_KINDS``."""
        if kind not in JUNK_KINDS:
            raise ValueError(f"unknown junk kind {kind!r}; one of {JUNK_KINDS}")
        self._junk.extend([kind] * times)

    def size_next(self, width: int, height: int, times: int = 1) -> None:
        """Serve the next ``times`` images at ``width`` x ``height`` instead of the table's size."""
        self._sizes.extend([(width, height)] * times)

    def stream_next(self, kind: str, size: int = 0, times: int = 1) -> None:
        """Answer the next ``times`` requests with a hostile stream, ``kind`` in ``STREAM_KINDS``:
        ``endless``: a 200 JSON answer whose ``b64_json`` never ends; ``endless_url``: a ``url`` answer whose
        file never ends; ``drip``: a valid answer, one byte per ``drip_interval`` seconds (``drip_url``: its
        file does that); ``big_b64``: a
        ``b64_json`` of ``size`` zero bytes, written as it is encoded (never held whole)."""
        if kind not in STREAM_KINDS:
            raise ValueError(f"unknown stream kind {kind!r}; one of {STREAM_KINDS}")
        self._streams.extend([(kind, size)] * times)

    def image_next(self, data: bytes, content_type: str = "image/png", times: int = 1) -> None:
        """Serve exactly ``data`` as the next ``times`` images (an MPO, a rotated JPEG, a pixel bomb…)."""
        self._images.extend([(data, content_type)] * times)

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """The next ``times`` requests take ``seconds`` instead of ``delay``."""
        self._delays.extend([seconds] * times)

    def image_for(self, request: Recorded) -> bytes | None:
        """The exact image bytes served for ``request`` (None if it got no image)."""
        return self._served.get(request.request_id)

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
            drip = (found[0][i:i + 1] for i in range(len(found[0])))
            return await self._write_stream(request, b"", drip, pause=self.drip_interval)
        return web.Response(body=found[0], content_type=found[1])

    async def _generations(self, request: web.Request) -> web.Response:
        return await self._handle(request, multipart=False)

    async def _edits(self, request: web.Request) -> web.Response:
        return await self._handle(request, multipart=True)

    async def _handle(self, request: web.Request, multipart: bool) -> web.Response:
        rid = _new_id()
        rec = Recorded(request.path, dict(request.headers), {}, [], time.monotonic(), request_id=rid)
        self.requests.append(rec)
        delay = self._delays.popleft() if self._delays else self.delay  # taken on arrival: an aborted upload used it
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            try:
                bad_body = await (self._read_multipart if multipart else self._read_json)(request, rec)
                self._check(request, rec, bad_body, multipart)
                async with self._key_slot(request):
                    response = await self._answer(rec, request, delay)
            except _Refused as e:
                response = self._error(e.status, e.message, e.type, e.code, rid)
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
        return None

    async def _read_multipart(self, request: web.Request, rec: Recorded) -> str | None:
        """Fill ``rec.body`` (text fields) and ``rec.images``; return a complaint if not multipart."""
        if not request.content_type.startswith("multipart/"):
            return "Content-Type must be multipart/form-data"
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if part.name == "image":
                rec.image_types.append(part.headers.get("Content-Type", ""))
                rec.images.append(bytes(await part.read()))
            elif part.name:
                rec.body[part.name] = await part.text()
        return None

    def _check(self, request: web.Request, rec: Recorded, bad_body: str | None, multipart: bool) -> None:
        """Raise ``_Refused`` like the gateway would: auth first, then the parameters."""
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise _Refused(401, "无效的令牌", "new_api_error", "invalid_api_key")

        def bad(message: str, status: int = 400, code: str = "invalid_parameter") -> _Refused:
            return _Refused(status, message, "invalid_request_error", code)

        if bad_body:
            raise bad(bad_body)
        b = rec.body
        if not b.get("model"):
            raise bad("model is required")
        if b["model"] != self.model:
            raise _Refused(
                503, f"当前分组 default 下对于模型 {b['model']} 无可用渠道",
                "new_api_error", "model_not_found",
            )
        prompt = b.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise bad("prompt is required")
        if len(prompt) > MAX_PROMPT:
            raise bad(f"prompt is longer than {MAX_PROMPT} characters", 413, "prompt_too_long")
        n = b.get("n")
        if not (n == 1 and not isinstance(n, bool) or multipart and n == "1"):
            raise bad(f"n must be 1, got {n!r}")
        if "aspect_ratio" in b and b["aspect_ratio"] not in RATIOS:
            raise bad(f"invalid aspect_ratio {b['aspect_ratio']!r}")
        if "size" in b and b["size"] not in SIZE_NAMES:
            raise bad(f"invalid size {b['size']!r}, must be one of 1K, 2K, 4K")
        if "response_format" in b and b["response_format"] not in FORMATS:
            raise bad(f"invalid response_format {b['response_format']!r}")
        if multipart and not rec.images:
            raise bad("at least one image is required")
        if len(rec.images) > MAX_IMAGES:
            raise bad(f"at most {MAX_IMAGES} images, got {len(rec.images)}")

    def _key_slot(self, request: web.Request) -> contextlib.AbstractAsyncContextManager[Any]:
        """One of the key's ``key_limit`` slots (none without a limit); a full key waits or is refused."""
        if self.key_limit is None:
            return contextlib.nullcontext()
        key = request.headers.get("Authorization", "")
        slots = self._key_slots.setdefault((key, self.key_limit), asyncio.Semaphore(self.key_limit))
        if self.key_limit_refuses and slots.locked():
            raise _Refused(429, f"concurrency limit of {self.key_limit} for this key reached", "upstream_error",
                           "rate_limit_exceeded")
        return slots

    async def _answer(self, rec: Recorded, request: web.Request, delay: float) -> web.StreamResponse:
        """Sleep the delay, then answer an injected failure, a hostile stream, injected junk, or an image."""
        if delay > 0:
            await asyncio.sleep(delay)
        rid = rec.request_id
        if self._fails:
            status, body, headers = self._fails.popleft()
            if body is None:
                type_, code = _ERROR_KINDS.get(status, ("upstream_error", "bad_response_status_code"))
                response = self._error(status, f"injected {status}", type_, code, rid)
            elif isinstance(body, str):
                ctype = "text/html" if body.lstrip().startswith("<") else "text/plain"
                response = web.Response(status=status, text=body, content_type=ctype)
            else:
                response = web.json_response(body, status=status)
            response.headers.update(headers or {})
            return response
        fmt = self.response_format or rec.body.get("response_format") or "url"
        if self._streams:
            return await self._hostile_stream(request, rec, *self._streams.popleft())
        if self._junk:
            return self._junk_answer(self._junk.popleft(), rid)
        if self._images:
            png, ctype = self._images.popleft()
        else:
            width, height = self._sizes.popleft() if self._sizes else SIZES[
                (rec.body.get("aspect_ratio", "1:1"), rec.body.get("size", "1K"))
            ]
            png, ctype = _with_text_chunk(await self._base_png(width, height), "fake-request-id", rid), "image/png"
        self._served[rid] = png
        answer = {"created": int(time.time()), "data": [self._item(fmt, rid, png, ctype)]}
        if fmt == "b64_json" and self.b64_style == "escaped_slashes":
            text = json.dumps(answer).replace("/", "\\/")
            return web.Response(text=text, content_type="application/json")
        return web.json_response(answer)

    def _item(self, fmt: str, rid: str, payload: bytes, ctype: str = "image/png") -> dict:
        if fmt == "b64_json":
            return {"b64_json": _b64(payload, self.b64_style)}
        self._files[f"{rid}.png"] = (payload, ctype)
        return {"url": f"{self.base_url}/files/{rid}.png"}

    async def _hostile_stream(self, request: web.Request, rec: Recorded, kind: str, size: int) -> web.StreamResponse:
        rid = rec.request_id
        if kind in ("endless_url", "drip_url"):
            if kind == "endless_url":
                self._files[f"{rid}.png"] = (b"endless", "image/png")
            else:
                png = self._served[rid] = _with_text_chunk(await self._base_png(64, 64), "fake-request-id", rid)
                self._files[f"{rid}.png"] = (png, "drip")
            return web.json_response({"data": [{"url": f"{self.base_url}/files/{rid}.png"}]})
        if kind == "endless":
            return await self._write_stream(request, b'{"data": [{"b64_json": "', itertools.repeat(b"A" * 65536), rid)
        if kind == "big_b64":
            zeros = base64.b64encode(bytes(3 * 65536))  # whole 3-byte groups: the pieces join into one base64
            pieces = itertools.chain(itertools.repeat(zeros, size // (3 * 65536)),
                                     [base64.b64encode(bytes(size % (3 * 65536))), b'"}]}'])
            return await self._write_stream(request, b'{"data": [{"b64_json": "', pieces, rid)
        png = _with_text_chunk(await self._base_png(64, 64), "fake-request-id", rid)
        self._served[rid] = png
        body = json.dumps({"data": [{"b64_json": base64.b64encode(png).decode()}]}).encode()
        drip = (body[i:i + 1] for i in range(len(body)))
        return await self._write_stream(request, b"", drip, rid, pause=self.drip_interval)

    async def _write_stream(self, request: web.Request, head: bytes, pieces: Any, rid: str = "",
                            pause: float = 0.0) -> web.StreamResponse:
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
        if kind == "not_json":
            return web.Response(body=_HTML_PAGE, content_type="text/html")
        answer: dict[str, Any] = {"created": int(time.time())}
        if kind == "empty_data":
            answer["data"] = []
        elif kind == "neither_field":
            answer["data"] = [{"revised_prompt": "x"}]
        elif kind == "url_not_image":  # a .png link that serves an HTML page
            answer["data"] = [self._item("url", rid, _HTML_PAGE, "text/html")]
        elif kind == "url_404":  # never stored, so GET answers 404
            answer["data"] = [{"url": f"{self.base_url}/files/{rid}.png"}]
        elif kind == "b64_not_image":
            answer["data"] = [self._item("b64_json", rid, _HTML_PAGE)]
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

    async def _base_png(self, width: int, height: int) -> bytes:
        """The cached PNG for this size, made once in a worker thread."""
        key = (width, height, self.noise, self.texture and not self.noise)
        if key in _PNG_CACHE:
            return _PNG_CACHE[key]
        future = self._pending.get(key)
        if future is None:
            future = self._pending[key] = asyncio.ensure_future(asyncio.to_thread(_make_png, *key))
            future.add_done_callback(lambda f: f.cancelled() or f.exception() or _PNG_CACHE.setdefault(key, f.result()))
        return await asyncio.shield(future)  # a cancelled request does not spoil the shared work

    @staticmethod
    def _error(status: int, message: str, type_: str, code: str, rid: str) -> web.Response:
        """An OpenAI-style error body; the message ends with the request id, as the gateway's do."""
        error = {"message": f"{message} (request id: {rid})", "type": type_, "code": code}
        return web.json_response({"error": error}, status=status)
