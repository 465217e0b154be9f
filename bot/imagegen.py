"""The image API client: one shared httpx.AsyncClient, typed errors, bounded retries. Knows nothing of Telegram."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import io
import itertools
import json
import logging
import os
import random
import re
import ssl
import tempfile
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypedDict

import httpx
from PIL import Image, UnidentifiedImageError

from . import bodies, metrics
from .config import ImageSettings
from .failures import KINDS
from .imagemodels import PROFILES, Profile
from .options import ImageRequest

log = logging.getLogger(__name__)

# The largest legitimate image is an RGB PNG at 5504×3072, ~51 MB; as base64 inside JSON ~68 MB.
MAX_IMAGE_BYTES = 64 * 1024 * 1024  # an image, downloaded or decoded from b64_json
MAX_ERROR_BYTES = 256 * 1024  # an error answer's body: only its message is of use
# The largest image any profile makes (nano-banana-2's 6336×2688, 17 Mpx): twice that in pixels, or a side twice
# the longest any profile makes, is a bomb.
MAX_PIXELS = 2 * max(w * h for p in PROFILES.values() for w, h in p.pixels.values())
MAX_SIDE = 2 * max(max(dims) for p in PROFILES.values() for dims in p.pixels.values())
B64_READ = 3 * 65536  # bytes of a reference read and base64-encoded at a time (whole 3-byte groups: no padding)
# Gemini's refusals: a candidate stopped for one of these has no image because a filter said no.
_SAFETY_STOPS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
# Google's error `status` → the kind, where it says more than the HTTP status.
_GOOGLE_STATUS = {
    "UNAUTHENTICATED": "auth",
    "PERMISSION_DENIED": "auth",
    "INVALID_ARGUMENT": "invalid",
    "FAILED_PRECONDITION": "invalid",
    "OUT_OF_RANGE": "invalid",
    "NOT_FOUND": "endpoint",
    "RESOURCE_EXHAUSTED": "rate_limited",
    "DEADLINE_EXCEEDED": "timeout",
    "UNAVAILABLE": "upstream",
    "INTERNAL": "upstream",
}
Picture = bytes | Path  # a reference picture for an edit: bytes, or a file streamed as it is sent
IN_MEMORY_BODY = 256 * 1024  # answer bodies up to this stay in memory; larger ones go to the spool folder
CRC_BLOCK = 1 << 20  # a PNG chunk's checksum is computed this much at a time
POOL_SHARD_SIZE = 8
# Pillow warns above this and refuses above twice it; inspect_image refuses what is above it before Pillow decodes.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
_FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"), "WEBP": ("webp", "image/webp")}
_REQUEST_ID = re.compile(r"request id:?\s*([A-Za-z0-9_-]+)", re.IGNORECASE)


class ImageGenError(Exception):
    """Base of every failure the client reports. `kind` is its row in bot/failures.py, which says whether asking
    again may help (`retryable`) and names the sentences users and operators get."""

    kind = "service"
    retryable = KINDS[kind].retryable

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.retryable = KINDS[cls.kind].retryable  # a kind missing from the table fails at import

    def __init__(self, detail: str = "", *, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(detail or self.__class__.__name__)
        self.detail, self.status, self.request_id = detail, status, request_id


class AuthError(ImageGenError):
    """401: the API key is wrong or belongs to another DMXAPI site."""

    kind = "auth"


class QuotaError(ImageGenError):
    """403: the key's quota is used up, or its group is disabled."""

    kind = "quota"


class PromptTooLongError(ImageGenError):
    kind = "prompt_too_long"


class EndpointError(ImageGenError):
    """404/405: nothing answers image requests at that address (a wrong IMAGE_API_BASE_URL)."""

    kind = "endpoint"


class InvalidRequestError(ImageGenError):
    """Any other 4xx: the gateway refused the parameters."""

    kind = "invalid"


class RateLimitedError(ImageGenError):
    kind = "rate_limited"

    def __init__(
        self,
        detail: str = "",
        *,
        retry_after: float | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(detail, status=status, request_id=request_id)
        self.retry_after = retry_after


class UpstreamError(ImageGenError):
    """5xx, an unreadable answer, or the connection failing."""

    kind = "upstream"


class GenerationTimeout(ImageGenError):
    """504/524 from the gateway, or our own read timeout."""

    kind = "timeout"


class NoImageError(ImageGenError):
    """200 without an image: usually the model's safety filter."""

    kind = "no_image"


class DownloadError(ImageGenError):
    """The returned URL could not be fetched."""

    kind = "download"


class NotAnImageError(ImageGenError):
    """What came back is not an image Pillow can read."""

    kind = "not_image"


class TooManyPixelsError(NotAnImageError):
    """An image far beyond the largest size in the table: refused from its header, never decoded."""

    kind = "too_many_pixels"


class SpoolError(ImageGenError):
    """The spool folder could not be written (the folder gone, say): our side, not the service's."""

    kind = "internal"


class SpoolFullError(SpoolError):
    """No space left on the spool folder's disk: the user hears that the bot's disk is full."""

    kind = "storage"


class BadAnswerError(ImageGenError):
    """An answer no working service sends: too large, nested too deep, fields of the wrong type, a broken URL.
    Not retried: it is paid for, and a broken gateway is likely to send the same again."""

    kind = "bad_answer"


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    """A checked image, in its own file in the spool folder until it is stored elsewhere (never whole in memory)."""

    path: Path
    nbytes: int
    format: str  # Pillow's name: PNG, JPEG, WEBP
    width: int
    height: int
    request_id: str | None
    upstream_seconds: float

    async def release(self) -> None:
        """Drop the file, unless it was moved away already (stored as the original)."""
        await asyncio.to_thread(self.path.unlink, missing_ok=True)

    @property
    def extension(self) -> str:
        return _FORMATS.get(self.format, (self.format.lower(), ""))[0]

    @property
    def mime_type(self) -> str:
        return _FORMATS.get(self.format, ("", "application/octet-stream"))[1]


def mime_of(extension: str) -> str:
    """The MIME type of an original by its file extension (`png`, `jpg`, `webp`), as the client named it."""
    return next((mime for ext, mime in _FORMATS.values() if ext == extension), "application/octet-stream")


def inspect_image(source: bytes | Path) -> tuple[str, int, int]:
    """Real format and dimensions (magic, not extension); a pixel bomb is refused from its header, before anything
    is decoded. CPU-bound: call off the event loop."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            fmt, (width, height) = img.format or "", img.size
            if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                raise TooManyPixelsError(f"{width}×{height} is far beyond the largest size the service makes")
            if fmt == "PNG":
                assert img.fp is not None  # an image opened from a file or bytes keeps it open
                _verify_png_chunks(img.fp, img.tile[0][2] - 8)
            else:
                img.verify()
    except Image.DecompressionBombError as exc:  # Pillow's own check at twice MAX_PIXELS, in Image.open
        raise TooManyPixelsError(str(exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NotAnImageError(f"unreadable image: {exc}") from None
    fmt = "JPEG" if fmt == "MPO" else fmt  # what many phones save: a JPEG with more pictures after the first
    if fmt not in _FORMATS:
        raise NotAnImageError(f"unsupported image format {fmt!r}")
    return fmt, width, height


def _verify_png_chunks(fp: IO[bytes], offset: int) -> None:
    """What Pillow's `verify` checks of a PNG (every chunk from the first IDAT on is whole, with its CRC), a
    megabyte at a time: Pillow reads each chunk whole, and an encoder that writes all pixels as one IDAT chunk
    (many do) made each check of a 50 MB PNG hold 100 MB — twenty at once were most of a 700 MB peak."""
    fp.seek(offset)
    while True:
        header = fp.read(8)
        if len(header) < 8:
            raise OSError("truncated PNG file")
        length, kind = int.from_bytes(header[:4], "big"), header[4:]
        if not kind.isalpha() or length > 0x7FFFFFFF:
            raise SyntaxError(f"broken PNG file (chunk {kind!r})")
        crc = zlib.crc32(kind)
        while length:
            block = fp.read(min(length, CRC_BLOCK))
            if not block:
                raise OSError("truncated PNG file")
            crc = zlib.crc32(block, crc)
            length -= len(block)
        stored = fp.read(4)
        if len(stored) < 4 or int.from_bytes(stored, "big") != crc:
            raise SyntaxError(f"broken PNG file (bad CRC in chunk {kind!r})")
        if kind == b"IEND":
            return


@dataclass(frozen=True, slots=True)
class _Call:
    """One call to the image API: what it asks for, whatever the model."""

    request: ImageRequest
    profile: Profile
    model_id: str  # the id the gateway knows the model by (IMAGE_MODELS may map it)
    count: int  # images asked of this one call
    images: Sequence[Picture]
    response_format: str | None


class ImageClient:
    """Talks to the image API for every profile (bot/imagemodels): OpenAI-style `/v1/images/generations` and
    `/edits`, and Gemini's `generateContent`. One instance (its connections in a few small pools) per bot.

    Every body is streamed against a cap, within a total deadline per attempt; what is large goes to files in
    `spool_dir` as it arrives, so memory holds a few chunks per request whatever the peer sends. References go out
    streamed from their files too: as multipart parts, or base64-encoded piece by piece into the JSON.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str | Mapping[str, str] = "nano-banana-2",
        *,
        spool_dir: Path,
        timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 2.0,
        max_image_bytes: int = MAX_IMAGE_BYTES,
        max_connections: int = 32,
    ) -> None:
        """`model`: profile name → the gateway's id for it (a profile not named is sent by its own name); a plain
        string is nano-banana-2's id, as before there were profiles."""
        self._ids = {"nano-banana-2": model} if isinstance(model, str) else dict(model)
        self._key = api_key
        self._spool = spool_dir
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_bytes = max_image_bytes
        self._max_answer = max_image_bytes * 4 // 3 + 1024 * 1024  # an answer's JSON: that image as base64, and a bit
        # Total time the retries may take, on top of one full attempt.
        self._retry_budget = max(60.0, timeout)
        # httpcore scans every connection of a pool for each request it places, so hundreds of parallel
        # generations in one pool cost CPU that grows with their square: shards of POOL_SHARD_SIZE keep it linear.
        shards = max(1, -(-max_connections // POOL_SHARD_SIZE))
        per_shard = -(-max_connections // shards)
        tls = ssl.create_default_context()  # loaded once, not once per shard
        self._pools = [
            httpx.AsyncClient(
                verify=tls,
                base_url=base_url.rstrip("/"),
                # identity: a compressed body could expand far beyond what was counted on the wire; the key goes
                # on each API request, in the header its model reads, and never with a download
                headers={"User-Agent": "imagine-bot", "Accept-Encoding": "identity"},
                timeout=httpx.Timeout(connect=15.0, read=timeout, write=60.0, pool=timeout),
                limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
                follow_redirects=True,
            )
            for _ in range(shards)
        ]
        self._turn = itertools.count()
        # Decoding base64 holds the GIL nearly throughout: two at once are no faster, and starve the event loop.
        self._decoding = asyncio.Semaphore(1)

    @classmethod
    def from_settings(cls, settings: ImageSettings, *, max_connections: int, spool_dir: Path) -> ImageClient:
        return cls(
            settings.image_api_base_url,
            settings.image_api_key.get_secret_value(),
            settings.gateway_ids,
            spool_dir=spool_dir,
            timeout=settings.image_request_timeout,
            retries=settings.image_api_retries,
            backoff=settings.image_api_retry_backoff,
            max_connections=max_connections,
        )

    def model_id(self, model: str) -> str:
        """The id sent upstream for a profile (`gpt-image-2` → `gpt-image-2-ssvip` when IMAGE_MODELS maps it)."""
        return self._ids.get(model, model)

    def url_of(self, request: ImageRequest, edit: bool) -> str:
        """Where a request goes (for an operator's error line)."""
        path = request.profile.gateway_path(self.model_id(request.model), edit)
        return f"{self._pools[0].base_url}".rstrip("/") + path

    def open(self) -> None:
        """Create the spool folder and drop what a crash left in it: files older than any attempt can last (another
        process sharing the folder may be writing the newer ones)."""
        self._spool.mkdir(parents=True, exist_ok=True)
        stale = time.time() - 2 * self._timeout - 60
        for leftover in self._spool.glob("*.part"):
            with contextlib.suppress(FileNotFoundError):
                if leftover.stat().st_mtime < stale:
                    leftover.unlink()

    async def aclose(self) -> None:
        await asyncio.gather(*(pool.aclose() for pool in self._pools))

    async def generate(
        self, request: ImageRequest, images: Sequence[Picture] = (), response_format: str | None = None
    ) -> GeneratedImage:
        """Make one image (an edit of `images` when given); retries what is worth retrying.

        Raises an ImageGenError subclass otherwise.
        """
        return (await self.generate_many(request, 1, images, response_format=response_format))[0]

    async def generate_many(
        self, request: ImageRequest, count: int, images: Sequence[Picture] = (), *, response_format: str | None = None
    ) -> list[GeneratedImage]:
        """`count` images of one request in one call, for a model that makes several a call (its profile's
        `max_outputs`: gpt-image-2's `n`); the images the answer has, at least one and at most `count`.

        `response_format` (`url`, `b64_json`) overrides the profile's, for the images API. ValueError for a count
        the model cannot make in one call; an ImageGenError subclass for what failed.
        """
        profile = request.profile
        if not 1 <= count <= profile.max_outputs:
            raise ValueError(f"{profile.name} makes 1 to {profile.max_outputs} images a call, not {count}")
        if len(images) > profile.max_references(count):
            raise InvalidRequestError(
                f"{len(images)} reference pictures; {profile.name} takes at most "
                f"{profile.max_references(count)} with {count} image(s) made"
            )
        call = _Call(request, profile, self.model_id(request.model), count, tuple(images), response_format)
        started = time.monotonic()
        http = self._pools[next(self._turn) % len(self._pools)]
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(http, call, started)
            except ImageGenError as exc:
                delay = self._retry_delay(exc, attempt, time.monotonic() - started)
                if delay is None:
                    raise
                known = [
                    f"status {exc.status}" if exc.status else "",
                    f"request id {exc.request_id}" if exc.request_id else "",
                ]
                log.warning(
                    "image API attempt %d failed (%s); retrying in %.1f s",
                    attempt,
                    ", ".join([exc.kind, *filter(None, known)]),
                    delay,
                )
                await asyncio.sleep(delay)

    def _retry_delay(self, exc: ImageGenError, attempt: int, elapsed: float) -> float | None:
        if not exc.retryable or attempt > self._retries:
            return None
        if isinstance(exc, GenerationTimeout) and exc.status is None:
            return None  # our own deadline already waited the full time
        delay = self._backoff * 2.0 ** (attempt - 1) * random.uniform(0.8, 1.2)
        if isinstance(exc, RateLimitedError) and exc.retry_after:
            delay = max(delay, min(exc.retry_after, 60.0))
        if elapsed + delay > self._retry_budget:
            return None
        return delay

    def _build(self, http: httpx.AsyncClient, call: _Call, opened: contextlib.ExitStack) -> httpx.Request:
        """The request as the call's profile wants it: path, key header, JSON or multipart, references."""
        profile, request = call.profile, call.request
        headers = (
            {"x-goog-api-key": self._key}
            if profile.key_header == "x-goog-api-key"
            else {"Authorization": f"Bearer {self._key}"}
        )
        path = profile.gateway_path(call.model_id, edit=bool(call.images))
        fields = profile.fields(request.options, request.expected_pixels, call.count)
        pictures = [_open_picture(image, opened) for image in call.images]
        if profile.api == "gemini":
            if not pictures:
                return http.build_request(
                    "POST", path, json={"contents": [{"parts": [{"text": request.prompt}]}], **fields}, headers=headers
                )
            body = _StreamedJson(
                {"contents": [{"parts": [{"text": request.prompt}, _PICTURES]}], **fields}, pictures, _inline_data
            )
            return body.request(http, path, headers)
        fields = {"model": call.model_id, "prompt": request.prompt, **fields}
        if call.response_format is not None:
            fields["response_format"] = call.response_format
        if not pictures:
            return http.build_request("POST", path, json=fields, headers=headers)
        if profile.references.via == "data_uri":
            return _StreamedJson({**fields, "image": [_PICTURES]}, pictures, _data_uri).request(http, path, headers)
        # multipart: the same fields as text, and one part named "image" per picture (the name repeated); a
        # picture in a file is streamed from it, in httpx's chunks
        files = [
            ("image", (f"image-{i}.{picture.extension}", picture.source, picture.mime))
            for i, picture in enumerate(pictures, start=1)
        ]
        text = {key: str(value) for key, value in fields.items()}
        return http.build_request("POST", path, data=text, files=files, headers=headers)

    async def _attempt(self, http: httpx.AsyncClient, call: _Call, started: float) -> list[GeneratedImage]:
        try:
            return await self._spooled_attempt(http, call, started)
        except OSError as exc:  # only the spool folder's files are left to raise it
            error = SpoolFullError if exc.errno in (errno.ENOSPC, errno.EDQUOT) else SpoolError
            raise error(f"cannot write to {self._spool}: {exc.strerror or exc}") from None

    async def _spooled_attempt(self, http: httpx.AsyncClient, call: _Call, started: float) -> list[GeneratedImage]:
        with tempfile.SpooledTemporaryFile(IN_MEMORY_BODY, dir=str(self._spool)) as body:
            with contextlib.ExitStack() as opened:
                request = self._build(http, call, opened)
                status, request_id, headers = await self._fetch_answer(http, request, body, call.count)
            try:
                parsed = await asyncio.to_thread(bodies.parse_json, body)
            except (bodies.HostileBody, bodies.MalformedBody) as exc:
                if status != 200:  # an error all the same: its status says which
                    raise _error_for(status, headers, None, _head(body), request_id) from None
                if isinstance(exc, bodies.HostileBody):
                    raise BadAnswerError(f"answer refused: {exc}", status=200, request_id=request_id) from None
                raise UpstreamError("answer is not JSON", status=200, request_id=request_id) from None
            if status != 200:
                raise _error_for(status, headers, parsed.value, _head(body), request_id)
            if call.profile.answer == "candidates":
                sources = _gemini_sources(parsed, request_id)
            else:
                sources = _data_sources(parsed, call.count, request_id)
            upstream_seconds = time.monotonic() - started
            metrics.upstream_latency(call.request.options["size"], upstream_seconds)
            made: list[GeneratedImage] = []
            try:
                for b64, url in sources:
                    if b64 is not None:
                        async with self._decoding:
                            path, nbytes = await asyncio.to_thread(self._decode_b64, body, b64, request_id)
                    else:
                        path, nbytes = await self._download(http, url, request_id)
                    made.append(await self._checked(path, nbytes, request_id, upstream_seconds))
            except BaseException:
                for image in made:  # one bad image fails the call: the others are not left behind
                    await image.release()
                raise
        return made

    async def _fetch_answer(
        self, http: httpx.AsyncClient, request: httpx.Request, body: IO[bytes], count: int = 1
    ) -> tuple[int, str | None, httpx.Headers]:
        """Send the request and write its answer into `body`, all within the total deadline of one attempt."""
        try:
            async with asyncio.timeout(self._timeout):
                response = await http.send(request, stream=True)
                try:
                    request_id = response.headers.get("x-request-id") or response.headers.get("x-oneapi-request-id")
                    cap = self._max_answer * count if response.status_code == 200 else MAX_ERROR_BYTES
                    try:
                        await _stream_into(response, body, cap)
                    except bodies.TooLarge as exc:
                        if response.status_code == 200:
                            raise BadAnswerError(f"answer refused: {exc}", status=200, request_id=request_id) from None
                        # an error with a huge body: its head is enough to tell what it is
                finally:
                    await response.aclose()
        except TimeoutError:
            raise GenerationTimeout(f"no complete answer within {self._timeout:.0f} s") from None
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                raise UpstreamError(f"connect: {exc!r}") from None
            raise GenerationTimeout(f"no answer within the read timeout: {exc!r}") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"connection failed: {exc!r}") from None
        return response.status_code, request_id, response.headers

    def _decode_b64(self, body: IO[bytes], text: str | bodies.BigString, request_id: str | None) -> tuple[Path, int]:
        """The image in `b64_json`, decoded from the answer into its own file, under the same cap as a download."""
        with self._new_file() as (out, path):
            try:
                return path, bodies.decode_base64(body, text, out, self._max_bytes)
            except bodies.NotBase64 as exc:
                raise NotAnImageError(f"b64_json is not valid base64: {exc}", request_id=request_id) from None
            except bodies.TooLarge as exc:
                raise BadAnswerError(f"b64_json image refused: {exc}", status=200, request_id=request_id) from None

    @contextlib.contextmanager
    def _new_file(self) -> Iterator[tuple[IO[bytes], Path]]:
        """A file in the spool folder for one image; removed unless the block succeeds. A plain file with a
        random name: `tempfile`'s wrapper re-creates a bound method on every `write`, once per chunk."""
        path = self._spool / f"{uuid.uuid4().hex}.part"
        out = path.open("xb")
        try:
            with out:
                yield out, path
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    async def _checked(
        self, path: Path, nbytes: int, request_id: str | None, upstream_seconds: float
    ) -> GeneratedImage:
        try:
            fmt, width, height = await asyncio.to_thread(inspect_image, path)
        except BaseException as exc:
            await asyncio.to_thread(path.unlink, missing_ok=True)
            if isinstance(exc, ImageGenError):
                exc.request_id = exc.request_id or request_id
            raise
        return GeneratedImage(path, nbytes, fmt, width, height, request_id, upstream_seconds)

    async def _download(self, http: httpx.AsyncClient, url: str, request_id: str | None) -> tuple[Path, int]:
        """Fetch the CDN link at once (it may expire), streamed to a file, under the byte cap and the deadline;
        a flaky CDN gets 3 tries."""
        for attempt in range(1, 4):
            try:
                return await self._download_once(http, url, request_id)
            except DownloadError as exc:
                if attempt == 3 or (exc.status is not None and exc.status < 500):
                    raise
                log.warning("image download attempt %d failed (%s); retrying", attempt, exc.detail)
                await asyncio.sleep(self._backoff * attempt / 2)
        raise AssertionError("unreachable")

    async def _download_once(self, http: httpx.AsyncClient, url: str, request_id: str | None) -> tuple[Path, int]:
        request = http.build_request("GET", url)  # without the key: it is for the API, not for the file's host
        try:
            with self._new_file() as (out, path):
                async with asyncio.timeout(self._timeout):
                    response = await http.send(request, stream=True)
                    try:
                        if response.status_code != 200:
                            raise DownloadError(
                                f"GET image: HTTP {response.status_code}",
                                status=response.status_code,
                                request_id=request_id,
                            )
                        nbytes = await _stream_into(response, out, self._max_bytes)
                    finally:
                        await response.aclose()
        except bodies.TooLarge as exc:
            raise BadAnswerError(f"image refused: {exc}", status=200, request_id=request_id) from None
        except TimeoutError:
            raise GenerationTimeout(
                f"image not downloaded within {self._timeout:.0f} s", request_id=request_id
            ) from None
        except httpx.HTTPError as exc:
            raise DownloadError(f"GET image failed: {exc!r}", request_id=request_id) from None
        return path, nbytes


@dataclass(frozen=True, slots=True)
class _Picture:
    """A reference opened for one attempt: a file handle (streamed) or bytes, its size and its type by magic."""

    source: IO[bytes] | bytes
    size: int
    mime: str

    @property
    def extension(self) -> str:
        return {"image/png": "png", "image/webp": "webp"}.get(self.mime, "jpg")


def _open_picture(image: Picture, opened: contextlib.ExitStack) -> _Picture:
    if isinstance(image, Path):
        handle = opened.enter_context(image.open("rb"))
        head = handle.read(16)
        handle.seek(0)
        return _Picture(handle, os.fstat(handle.fileno()).st_size, _mime_of(head))
    return _Picture(image, len(image), _mime_of(image))


class _Slot:
    """Where, in a JSON body, the references go."""


_PICTURES = _Slot()


def _inline_data(picture: _Picture) -> tuple[bytes, bytes]:
    """Gemini's inline part around a picture's base64."""
    head = f'{{"inline_data": {{"mime_type": "{picture.mime}", "data": "'
    return head.encode(), b'"}}'


def _data_uri(picture: _Picture) -> tuple[bytes, bytes]:
    """Seedream's data URI (`data:image/png;base64,…`) as a JSON string around a picture's base64."""
    return f'"data:{picture.mime};base64,'.encode(), b'"'


class _StreamedJson:
    """A JSON body whose references are base64-encoded from their files as it is sent, a few chunks at a time:
    never a whole picture's base64 in memory. Its exact length is known beforehand (base64 of n bytes is
    4·⌈n/3⌉ characters), so it goes out with a Content-Length, not chunked."""

    def __init__(self, body: dict, pictures: list[_Picture], wrap: Callable[[_Picture], tuple[bytes, bytes]]) -> None:
        marker = f"pictures-{uuid.uuid4().hex}"  # a prompt cannot hold it by chance
        text = json.dumps(body, ensure_ascii=False, default=lambda _: marker)
        before, after = text.split(json.dumps(marker))
        self._pieces: list[bytes | _Picture] = [before.encode()]
        for i, picture in enumerate(pictures):
            head, tail = wrap(picture)
            self._pieces += [b", " + head if i else head, picture, tail]
        self._pieces.append(after.encode())
        self.length = sum(len(p) if isinstance(p, bytes) else 4 * -(-p.size // 3) for p in self._pieces)

    def request(self, http: httpx.AsyncClient, path: str, headers: dict[str, str]) -> httpx.Request:
        headers = {**headers, "Content-Type": "application/json", "Content-Length": str(self.length)}
        return http.build_request("POST", path, content=self._stream(), headers=headers)

    async def _stream(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            if isinstance(piece, bytes):
                yield piece
            elif isinstance(piece.source, bytes):
                for at in range(0, piece.size, B64_READ):
                    yield base64.b64encode(piece.source[at : at + B64_READ])
            else:
                piece.source.seek(0)  # a retry sends it again
                while chunk := await asyncio.to_thread(_encoded_chunk, piece.source):
                    yield chunk


def _encoded_chunk(handle: IO[bytes]) -> bytes:
    return base64.b64encode(handle.read(B64_READ))


Source = tuple[str | bodies.BigString | None, str]  # (base64, "") or (None, url)


def _bad(what: str, request_id: str | None) -> BadAnswerError:
    return BadAnswerError(f"answer refused: {what}", status=200, request_id=request_id)


def _data_sources(parsed: bodies.Parsed, count: int, request_id: str | None) -> list[Source]:
    """The images of an OpenAI-style answer (`data[].b64_json` or `data[].url`), at most `count`, after checking
    the answer's shape."""
    answer = parsed.value
    if not isinstance(answer, dict):
        raise _bad("not a JSON object", request_id)
    data = answer.get("data")
    if data is not None and not isinstance(data, list):
        raise _bad("data is not a list", request_id)
    items = (data or [])[:count]
    if not items and isinstance(answer.get("error"), dict):  # an error dressed as a 200
        raise UpstreamError(f"error in a 200 answer: {_describe(answer)}", status=200, request_id=request_id)
    sources: list[Source] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad(f"data[{i}] is not an object", request_id)
        if item.get("b64_json"):
            value = parsed.resolve(item["b64_json"])
            if not isinstance(value, str | bodies.BigString):
                raise _bad(f"b64_json is a {type(value).__name__}", request_id)
            sources.append((value, ""))
        elif item.get("url"):
            sources.append((None, _checked_url(parsed.resolve(item["url"]), request_id)))
    if not sources:
        raise NoImageError(f"no image in answer: {_describe(answer)}", status=200, request_id=request_id)
    return sources


def _checked_url(url: object, request_id: str | None) -> str:
    if not isinstance(url, str):
        raise _bad("url is not a short string", request_id)
    try:
        scheme = httpx.URL(url).scheme
    except (httpx.InvalidURL, ValueError):
        raise _bad("url is not a URL", request_id) from None
    if scheme not in ("http", "https"):
        raise _bad(f"url has the scheme {scheme!r}", request_id)
    return url


def _gemini_sources(parsed: bodies.Parsed, request_id: str | None) -> list[Source]:
    """The image of a Gemini answer (`candidates[0].content.parts[].inlineData.data`). A blocked prompt, a
    candidate stopped by a filter, or one without an image part is the "no image" kind, as an empty `data` is."""
    answer = parsed.value
    if not isinstance(answer, dict):
        raise _bad("not a JSON object", request_id)
    if isinstance(answer.get("error"), dict):
        raise UpstreamError(f"error in a 200 answer: {_describe(answer)}", status=200, request_id=request_id)
    feedback = answer.get("promptFeedback")
    if isinstance(feedback, dict) and feedback.get("blockReason"):
        raise NoImageError(f"prompt blocked: {str(feedback['blockReason'])[:100]}", status=200, request_id=request_id)
    candidates = answer.get("candidates")
    if candidates is not None and not isinstance(candidates, list):
        raise _bad("candidates is not a list", request_id)
    if not candidates:
        raise NoImageError(f"no candidates in answer: {_describe(answer)}", status=200, request_id=request_id)
    candidate = candidates[0]
    if not isinstance(candidate, dict):
        raise _bad("candidates[0] is not an object", request_id)
    content = candidate.get("content") or {}
    parts = content.get("parts") if isinstance(content, dict) else None
    if content and not isinstance(parts, list):
        raise _bad("content.parts is not a list", request_id)
    for i, part in enumerate(parts or []):
        if not isinstance(part, dict):
            raise _bad(f"parts[{i}] is not an object", request_id)
        inline = part.get("inlineData", part.get("inline_data"))
        if inline is None:
            continue  # a text part beside the image
        if not isinstance(inline, dict):
            raise _bad(f"parts[{i}].inlineData is not an object", request_id)
        value = parsed.resolve(inline.get("data"))
        if not isinstance(value, str | bodies.BigString):
            raise _bad(f"inlineData.data is a {type(value).__name__}", request_id)
        return [(value, "")]
    finish = str(candidate.get("finishReason") or "")[:50]
    why = "refused by the safety filter" if finish in _SAFETY_STOPS else "no image part"
    raise NoImageError(f"{why} (finishReason {finish or 'none'})", status=200, request_id=request_id)


async def _stream_into(response: httpx.Response, out: IO[bytes], cap: int) -> int:
    """Write the body into `out` as it arrives; bodies.TooLarge once it passes `cap` (declared or real)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise bodies.TooLarge(f"{declared} bytes declared, over {cap}")
    total = 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > cap:
            raise bodies.TooLarge(f"over {cap} bytes")
        out.write(chunk)
    return total


def _head(body: IO[bytes], size: int = 200) -> str:
    body.seek(0)
    return body.read(size).decode("utf-8", "replace").replace("\n", " ")


def _mime_of(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"


def _describe(body: object) -> str:
    """A short, secret-free summary of an upstream body for the log."""
    return json.dumps(body, ensure_ascii=False)[:300]


class _ErrorFields(TypedDict):
    """What every error answer's ImageGenError carries besides its detail."""

    status: int
    request_id: str | None


def _error_for(status: int, headers: httpx.Headers, body: object, head: str, request_id: str | None) -> ImageGenError:
    """The kind of an error answer: from the HTTP status, or from Google's `status` (`PERMISSION_DENIED` is a key
    refused, whatever its HTTP status) when a Gemini error body has one."""
    message, google = "", ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        message = str(error.get("message") or "")[:500]
        if isinstance(error.get("status"), str):  # Google's {"code", "message", "status"}
            google = error["status"][:50]
        code = google or str(error.get("code") or "")[:100]
        message = f"{message} [{code}]" if code else message
    elif isinstance(body, dict):
        message = _describe(body)
    else:
        message = head
    if request_id is None and (found := _REQUEST_ID.search(message)):
        request_id = found.group(1)
    detail = f"HTTP {status}: {message}"
    kwargs: _ErrorFields = {"status": status, "request_id": request_id}
    kind = _GOOGLE_STATUS.get(google)
    if status == 401 or kind == "auth":
        return AuthError(detail, **kwargs)
    if status == 429 or kind == "rate_limited":
        retry_after = headers.get("retry-after")
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return RateLimitedError(detail, retry_after=seconds, **kwargs)
    if kind == "invalid":
        return InvalidRequestError(detail, **kwargs)
    if status == 403:
        return QuotaError(detail, **kwargs)
    if status == 413:
        return PromptTooLongError(detail, **kwargs)
    if status in (404, 405) or kind == "endpoint":
        return EndpointError(detail, **kwargs)
    if status in (504, 524, 408) or kind == "timeout":
        return GenerationTimeout(detail, **kwargs)
    if status >= 500 or kind == "upstream":
        return UpstreamError(detail, **kwargs)
    return InvalidRequestError(detail, **kwargs)
