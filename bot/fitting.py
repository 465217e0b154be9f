"""An original made to fit Telegram's upload limit: losslessly where that can work, else as a full-resolution JPEG.

CPU-bound and holds one decoded bitmap: run it off the event loop, under the gate of heavy image work. Whether an
encoding can fit is judged from a sample of bands of rows before the whole picture is encoded, so a noise-like 4K
PNG that no lossless encoder can shrink costs a fraction of a second per format tried, not seconds.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps

log = logging.getLogger(__name__)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KEPT_CHUNKS = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS"})  # the critical ones, and transparency
JPEG_QUALITIES = (95, 92, 90, 85, 80, 75, 70, 60, 50)  # 95 first: "high quality"; lower only when 95 is too big
FULL_CHROMA_FROM = 90  # at this quality and above, colour is kept at full resolution (4:4:4)
SAMPLE_BANDS = 8  # bands of rows, spread over the height, whose encoded size estimates the whole
SAMPLE_SHARE = 8  # the bands together are 1/8 of the rows
ESTIMATE_MARGIN = 0.95  # an estimate must be this far under the limit before the whole picture is encoded
WEBP_BYTES_PER_PIXEL = 20  # what libwebp's lossless encoder holds while it works (measured: ~310 MB at 17 Mpx)
WEBP_MAX_SIDE = 16383
COPY_CHUNK = 1 << 20


class CannotFit(Exception):
    """Not even the lowest JPEG quality tried fits the limit."""


@dataclass(frozen=True, slots=True)
class Fitted:
    path: Path  # a new file in the folder given; the caller removes it after the upload
    nbytes: int
    extension: str  # "png", "webp" or "jpg"
    lossless: bool  # the same pixels as the original


def fit(source: Path, limit: int, folder: Path, memory: int) -> Fitted:
    """A copy of `source` of at most `limit` bytes: its PNG without ancillary chunks, or recompressed, or as lossless
    WEBP (when its encoder's memory fits in `memory` bytes), else the highest JPEG quality that fits."""
    with source.open("rb") as handle:
        is_png = handle.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    if is_png:
        with contextlib.suppress(ValueError):  # a malformed chunk list: decoding decides
            written = _written(folder, lambda out: _copy_critical_chunks(source, out), limit)
            if written is not None:
                return Fitted(*written, "png", True)
    with Image.open(source) as img:
        img.load()
        if is_png:  # lossless re-encodings of a JPEG or lossy WEBP only grow
            lossless = [("PNG", "png", {"compress_level": 9})]
            if img.width * img.height * WEBP_BYTES_PER_PIXEL <= memory and max(img.size) <= WEBP_MAX_SIDE:
                lossless.append(("WEBP", "webp", {"lossless": True, "quality": 50, "method": 4}))
            for fmt, extension, options in lossless:
                fitted = _encode_if_it_fits(img, fmt, extension, options, limit, folder, lossless=True)
                if fitted is not None:
                    return fitted
        rgb = _flattened(img)
    del img
    for quality in JPEG_QUALITIES:
        options = {"quality": quality, "subsampling": 0 if quality >= FULL_CHROMA_FROM else 2}
        fitted = _encode_if_it_fits(rgb, "JPEG", "jpg", options, limit, folder, lossless=False)
        if fitted is not None:
            return fitted
    raise CannotFit(f"{source.name}: no JPEG quality down to {JPEG_QUALITIES[-1]} fits {limit} bytes")


def _copy_critical_chunks(source: Path, out: BinaryIO) -> None:
    """Stream the PNG's chunks to `out` without the ancillary ones (text, EXIF, ICC profile, C2PA, …): the same
    pixels, read and written a megabyte at a time."""
    with source.open("rb") as handle:
        out.write(handle.read(len(PNG_SIGNATURE)))
        while header := handle.read(8):
            if len(header) < 8:
                raise ValueError("truncated chunk header")
            length, kind = int.from_bytes(header[:4], "big"), header[4:]
            remaining = length + 4  # the data and its CRC
            if kind not in KEPT_CHUNKS:
                handle.seek(remaining, 1)
                continue
            out.write(header)
            while remaining:
                block = handle.read(min(remaining, COPY_CHUNK))
                if not block:
                    raise ValueError("truncated chunk")
                out.write(block)
                remaining -= len(block)
            if kind == b"IEND":
                return
    raise ValueError("no IEND chunk")


def _encode_if_it_fits(
    img: Image.Image, fmt: str, extension: str, options: dict, limit: int, folder: Path, *, lossless: bool
) -> Fitted | None:
    estimate = _estimate(img, fmt, options)
    if estimate > limit * ESTIMATE_MARGIN:
        log.debug("%s %s: about %d bytes, over %d; not tried", fmt, options, estimate, limit)
        return None
    written = _written(folder, lambda out: img.save(out, fmt, **options), limit)
    if written is None:
        log.debug("%s %s: over %d bytes after all", fmt, options, limit)
        return None
    return Fitted(*written, extension, lossless)


def _estimate(img: Image.Image, fmt: str, options: dict) -> int:
    """The encoded size of the whole picture, from bands of rows spread over its height."""
    band = max(16, img.height // (SAMPLE_BANDS * SAMPLE_SHARE) // 16 * 16)  # whole JPEG blocks
    if band * SAMPLE_BANDS >= img.height:
        return _encoded_size(img, fmt, options)
    step = (img.height - band) // (SAMPLE_BANDS - 1)
    sampled = sum(
        _encoded_size(img.crop((0, top, img.width, top + band)), fmt, options)
        for top in range(0, step * SAMPLE_BANDS, step)
    )
    return sampled * img.height // (band * SAMPLE_BANDS)


def _encoded_size(img: Image.Image, fmt: str, options: dict) -> int:
    counter = _Counter()
    img.save(counter, fmt, **options)  # type: ignore[arg-type]  # Pillow only writes and flushes it
    return counter.size


class _Counter:
    """A file that only counts what is written to it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        """Nothing is kept."""


def _flattened(img: Image.Image) -> Image.Image:
    """RGB as the picture looks: turned as its EXIF says (a JPEG keeps no PNG metadata), transparency on white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img if img.mode == "RGB" else img.convert("RGB")


def _written(folder: Path, write: Callable[[BinaryIO], object], limit: int) -> tuple[Path, int] | None:
    """A new file in `folder` made by `write`, and its size; None (and no file) when it is over `limit`."""
    path = folder / f"fit-{uuid.uuid4().hex}.part"
    try:
        with path.open("xb") as out:
            write(out)
            size = out.tell()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size > limit:
        path.unlink(missing_ok=True)
        return None
    return path, size
