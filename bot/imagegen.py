"""The image API client: one shared httpx.AsyncClient, typed errors, bounded retries. Knows nothing of Telegram."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import itertools
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from PIL import Image, UnidentifiedImageError

from . import metrics
from .config import ImageSettings
from .options import ImageRequest

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 64 * 1024 * 1024
POOL_SHARD_SIZE = 8
_FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg"), "WEBP": ("webp", "image/webp")}
_REQUEST_ID = re.compile(r"request id:?\s*([A-Za-z0-9_-]+)", re.IGNORECASE)


class ImageGenError(Exception):
    """Base of every failure the client reports. `kind` names the user-facing sentence in texts.py."""

    kind = "service"
    retryable = False

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
    retryable = True

    def __init__(self, *args: object, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.retry_after = retry_after


class UpstreamError(ImageGenError):
    """5xx, an unreadable answer, or the connection failing."""

    kind = "upstream"
    retryable = True


class GenerationTimeout(ImageGenError):
    """504/524 from the gateway, or our own read timeout."""

    kind = "timeout"
    retryable = True


class NoImageError(ImageGenError):
    """200 without an image: usually the model's safety filter."""

    kind = "no_image"


class DownloadError(ImageGenError):
    """The returned URL could not be fetched."""

    kind = "download"


class NotAnImageError(ImageGenError):
    """What came back is not an image Pillow can read."""

    kind = "not_image"


class ByteBudget:
    """Bounds the image bytes being downloaded and held at once: a 4K PNG is 20-30 MB, and twenty of them
    arriving together must not all sit in memory. One image larger than the whole budget still gets through alone."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._changed = asyncio.Condition()

    async def acquire(self, amount: int) -> Lease:
        async with self._changed:
            await self._changed.wait_for(lambda: self._used == 0 or self._used + amount <= self._limit)
            self._used += amount
        return Lease(self, amount)

    async def _release(self, amount: int) -> None:
        async with self._changed:
            self._used -= amount
            self._changed.notify_all()


class Lease:
    """A share of a ByteBudget, given back once (later calls do nothing)."""

    def __init__(self, budget: ByteBudget, amount: int) -> None:
        self._budget, self._amount = budget, amount

    async def release(self) -> None:
        amount, self._amount = self._amount, 0
        if amount:
            await self._budget._release(amount)


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes
    format: str  # Pillow's name: PNG, JPEG, WEBP
    width: int
    height: int
    request_id: str | None
    upstream_seconds: float
    lease: Lease | None = None  # the memory it holds; release it once the bytes are stored elsewhere

    async def release(self) -> None:
        if self.lease is not None:
            await self.lease.release()

    @property
    def extension(self) -> str:
        return _FORMATS.get(self.format, (self.format.lower(), ""))[0]

    @property
    def mime_type(self) -> str:
        return _FORMATS.get(self.format, ("", "application/octet-stream"))[1]


def inspect_image(data: bytes) -> tuple[str, int, int]:
    """Real format and dimensions from the bytes (magic, not extension). CPU-bound: call off the event loop."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
            fmt, (width, height) = img.format or "", img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise NotAnImageError(f"unreadable image: {exc}") from None
    if fmt not in _FORMATS:
        raise NotAnImageError(f"unsupported image format {fmt!r}")
    return fmt, width, height


class ImageClient:
    """Talks to `POST {base}/v1/images/generations`. One instance (and one connection pool) per bot."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        timeout: float = 300.0,
        retries: int = 3,
        backoff: float = 2.0,
        max_image_bytes: int = MAX_IMAGE_BYTES,
        max_connections: int = 32,
        budget: ByteBudget | None = None,
    ) -> None:
        self._model = model
        self._retries = retries
        self._backoff = backoff
        self._max_bytes = max_image_bytes
        self._budget = budget
        # Total time the retries may take, on top of one full attempt.
        self._retry_budget = max(60.0, timeout)
        # httpcore scans every connection of a pool for each request it places, so hundreds of parallel
        # generations in one pool cost CPU that grows with their square: shards of at most 16 keep it linear.
        shards = max(1, -(-max_connections // POOL_SHARD_SIZE))
        per_shard = -(-max_connections // shards)
        tls = ssl.create_default_context()  # loaded once, not once per shard
        self._pools = [
            httpx.AsyncClient(
                verify=tls,
                base_url=base_url.rstrip("/"),
                headers={"Authorization": f"Bearer {api_key}", "User-Agent": "imagine-bot"},
                timeout=httpx.Timeout(connect=15.0, read=timeout, write=60.0, pool=timeout),
                limits=httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard),
                follow_redirects=True,
            )
            for _ in range(shards)
        ]
        self._turn = itertools.count()

    @classmethod
    def from_settings(cls, settings: ImageSettings, *, max_connections: int, budget: ByteBudget | None = None
                      ) -> ImageClient:
        return cls(
            settings.image_api_base_url,
            settings.image_api_key.get_secret_value(),
            settings.image_model,
            timeout=settings.image_request_timeout,
            retries=settings.image_api_retries,
            backoff=settings.image_api_retry_backoff,
            max_connections=max_connections,
            budget=budget,
        )

    async def aclose(self) -> None:
        await asyncio.gather(*(pool.aclose() for pool in self._pools))

    async def generate(
        self, request: ImageRequest, images: Sequence[bytes] = (), response_format: str = "url"
    ) -> GeneratedImage:
        """Make one image (an edit of `images` when given); retries what is worth retrying.

        Raises an ImageGenError subclass otherwise.
        """
        payload = {
            "model": self._model,
            "prompt": request.prompt,
            "n": 1,
            "aspect_ratio": request.aspect_ratio.value,
            "size": request.size.value.upper(),
            "response_format": response_format,
        }
        started = time.monotonic()
        http = self._pools[next(self._turn) % len(self._pools)]
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._attempt(http, payload, images, started)
            except ImageGenError as exc:
                delay = self._retry_delay(exc, attempt, time.monotonic() - started)
                if delay is None:
                    raise
                log.warning(
                    "image API attempt %d failed (%s, status %s, request id %s); retrying in %.1f s",
                    attempt, exc.kind, exc.status, exc.request_id, delay,
                )
                await asyncio.sleep(delay)

    def _retry_delay(self, exc: ImageGenError, attempt: int, elapsed: float) -> float | None:
        if not exc.retryable or attempt > self._retries:
            return None
        if isinstance(exc, GenerationTimeout) and exc.status is None:
            return None  # our own read timeout already waited the full budget
        delay = self._backoff * 2 ** (attempt - 1) * random.uniform(0.8, 1.2)
        if isinstance(exc, RateLimitedError) and exc.retry_after:
            delay = max(delay, min(exc.retry_after, 60.0))
        if elapsed + delay > self._retry_budget:
            return None
        return delay

    async def _post(self, http: httpx.AsyncClient, payload: dict, images: Sequence[bytes]) -> httpx.Response:
        if not images:
            return await http.post("/v1/images/generations", json=payload)
        # multipart: the same fields as text, and one part named "image" per picture (the name repeated)
        files = [("image", (f"image-{i}.{_extension_of(data)}", data, _mime_of(data))) for i, data in
                 enumerate(images, start=1)]
        fields = {key: str(value) for key, value in payload.items()}
        return await http.post("/v1/images/edits", data=fields, files=files)

    async def _attempt(self, http: httpx.AsyncClient, payload: dict, images: Sequence[bytes],
                       started: float) -> GeneratedImage:
        try:
            response = await self._post(http, payload, images)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                raise UpstreamError(f"connect: {exc!r}") from None
            raise GenerationTimeout(f"no answer within the read timeout: {exc!r}") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"connection failed: {exc!r}") from None
        request_id = response.headers.get("x-request-id") or response.headers.get("x-oneapi-request-id")
        body = await asyncio.to_thread(_json_or_none, response.content) if response.content else None
        if response.status_code != 200:
            raise _error_for(response, body, request_id)
        if not isinstance(body, dict):
            raise UpstreamError("answer is not JSON", status=200, request_id=request_id)
        data = body.get("data")
        item = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else None
        if item is None and isinstance(body.get("error"), dict):  # an error dressed as a 200
            raise UpstreamError(f"error in a 200 answer: {_describe(body)}", status=200, request_id=request_id)
        if item is None or not (item.get("b64_json") or item.get("url")):
            raise NoImageError(f"no image in answer: {_describe(body)}", status=200, request_id=request_id)
        upstream_seconds = time.monotonic() - started
        metrics.upstream_latency(payload["size"], upstream_seconds)
        lease = None
        if item.get("b64_json"):
            raw = await asyncio.to_thread(_decode_b64, item["b64_json"], request_id)
        else:
            raw, lease = await self._download(http, str(item["url"]), request_id, _expected_bytes(payload["size"]))
        try:
            fmt, width, height = await asyncio.to_thread(inspect_image, raw)
        except BaseException as exc:
            if lease is not None:
                await lease.release()
            if isinstance(exc, NotAnImageError):
                exc.request_id = request_id  # the log must be able to name the answer that was not an image
            raise
        return GeneratedImage(raw, fmt, width, height, request_id, upstream_seconds, lease)

    async def _download(self, http: httpx.AsyncClient, url: str, request_id: str | None,
                        expected: int) -> tuple[bytes, Lease | None]:
        """Fetch the CDN link at once (it may expire), streamed, under the byte cap; a flaky CDN gets 3 tries."""
        for attempt in range(1, 4):
            try:
                return await self._download_once(http, url, request_id, expected)
            except DownloadError as exc:
                if attempt == 3 or (exc.status is not None and exc.status < 500):
                    raise
                log.warning("image download attempt %d failed (%s); retrying", attempt, exc.detail)
                await asyncio.sleep(self._backoff * attempt / 2)
        raise AssertionError("unreachable")

    async def _download_once(self, http: httpx.AsyncClient, url: str, request_id: str | None,
                             expected: int) -> tuple[bytes, Lease | None]:
        request = http.build_request("GET", url)
        del request.headers["Authorization"]  # the key is for the API, not for whoever hosts the file
        chunks: list[bytes] = []
        total = 0
        # Room is taken before the request: once the answer flows, its bytes pile up in memory whether read or not.
        lease = await self._budget.acquire(expected) if self._budget is not None else None
        try:
            response = await http.send(request, stream=True)
            try:
                if response.status_code != 200:
                    raise DownloadError(
                        f"GET image: HTTP {response.status_code}", status=response.status_code, request_id=request_id
                    )
                declared = int(response.headers.get("content-length") or 0)
                if declared > self._max_bytes:
                    raise NotAnImageError(f"image of {declared} bytes is over the cap", request_id=request_id)
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > self._max_bytes:
                        raise NotAnImageError(f"image over {self._max_bytes} bytes", request_id=request_id)
                    chunks.append(chunk)
            finally:
                await response.aclose()
        except BaseException as exc:
            if lease is not None:
                await lease.release()
            if isinstance(exc, httpx.HTTPError):
                raise DownloadError(f"GET image failed: {exc!r}", request_id=request_id) from None
            raise
        if total > 4 * 1024 * 1024:  # joining 20 MB holds the event loop (and the GIL) for a while
            return await asyncio.to_thread(b"".join, chunks), lease
        return b"".join(chunks), lease


def _expected_bytes(size: str) -> int:
    """What a PNG of that class usually weighs (4K: 20-30 MB), to reserve memory before downloading it."""
    return {"1K": 2, "2K": 8, "4K": 24}.get(size, 24) * 1024 * 1024


def _mime_of(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "image/jpeg"


def _extension_of(data: bytes) -> str:
    return {"image/png": "png", "image/webp": "webp"}.get(_mime_of(data), "jpg")


def _json_or_none(content: bytes) -> object:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _decode_b64(text: str, request_id: str | None) -> bytes:
    if "," in text[:100] and text.startswith("data:"):
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NotAnImageError("b64_json is not valid base64", request_id=request_id) from None


def _describe(body: object) -> str:
    """A short, secret-free summary of an upstream body for the log."""
    return json.dumps(body, ensure_ascii=False)[:300]


def _error_for(response: httpx.Response, body: object, request_id: str | None) -> ImageGenError:
    status = response.status_code
    message = ""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = str(body["error"].get("message") or "")
        code = str(body["error"].get("code") or "")
        message = f"{message} [{code}]" if code else message
    elif isinstance(body, dict):
        message = _describe(body)
    else:
        message = response.text[:200].replace("\n", " ")
    if request_id is None and (found := _REQUEST_ID.search(message)):
        request_id = found.group(1)
    detail = f"HTTP {status}: {message}"
    kwargs = {"status": status, "request_id": request_id}
    if status == 401:
        return AuthError(detail, **kwargs)
    if status == 403:
        return QuotaError(detail, **kwargs)
    if status == 413:
        return PromptTooLongError(detail, **kwargs)
    if status in (404, 405):
        return EndpointError(detail, **kwargs)
    if status == 429:
        retry_after = response.headers.get("retry-after")
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return RateLimitedError(detail, retry_after=seconds, **kwargs)
    if status in (504, 524, 408):
        return GenerationTimeout(detail, **kwargs)
    if status >= 500:
        return UpstreamError(detail, **kwargs)
    return InvalidRequestError(detail, **kwargs)
