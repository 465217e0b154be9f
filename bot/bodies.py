"""Answer bodies read without trusting them: the JSON around an image without the image's own string, and base64
decoded leniently, piece by piece, from one file into another. CPU-bound: call these off the event loop.

A 4K PNG answered as `b64_json` is ~68 MB of JSON; json.loads of it holds the bytes, the decoded text and the
string value at once (~200 MB), and the decoded image on top. Here a string longer than `BIG_STRING` stays in the
file and only its position is kept, so memory stays at a few chunks whatever arrives.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from typing import IO

CHUNK = 1 << 16  # bytes read at a time: each C call on a chunk holds the GIL, and the event loop waits for it
BIG_STRING = 64 * 1024  # longer JSON strings (an image in base64) are left in the file
MAX_SKELETON = 256 * 1024  # the JSON apart from those strings: a real answer has a few hundred bytes of it
_MARK = "\x00big:"
_QUOTE_OR_ESCAPE = re.compile(rb'["\\]')
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]")
_NORMALISE = str.maketrans("-_", "+/", " \t\r\n\f\v")  # URL-safe alphabet; whitespace and line breaks go


class MalformedBody(ValueError):
    """Not JSON at all (an HTML error page, a truncated answer)."""


class HostileBody(ValueError):
    """JSON no real answer looks like: nested too deep, or too much of it outside the image."""


class NotBase64(ValueError):
    """A string that no lenient base64 decoder accepts."""


class TooLarge(ValueError):
    """More decoded bytes than the cap allows."""


@dataclass(frozen=True, slots=True)
class BigString:
    """A JSON string left in the file: the bytes between its quotes, still JSON-escaped."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Parsed:
    value: object
    big: tuple[BigString, ...]

    def resolve(self, value: object) -> object:
        """`value` itself, or the BigString it stands for."""
        if isinstance(value, str) and value.startswith(_MARK):
            return self.big[int(value[len(_MARK) :])]
        return value


def parse_json(body: IO[bytes]) -> Parsed:
    """The JSON in `body` (read from its start), with every string over BIG_STRING bytes replaced by a marker."""
    body.seek(0)
    skeleton = bytearray()
    big: list[BigString] = []
    piece = bytearray()  # the string being read, while it is still small
    in_string = is_big = escaped = False
    start = offset = 0

    def take(data: bytes) -> None:
        nonlocal is_big
        if not is_big:
            piece.extend(data)
            if len(piece) > BIG_STRING:
                is_big = True
                piece.clear()

    while chunk := body.read(CHUNK):
        pos = 0
        if escaped:  # the previous chunk ended on a backslash: this byte belongs to its escape
            take(chunk[:1])
            pos, escaped = 1, False
        while pos < len(chunk):
            if not in_string:
                quote = chunk.find(b'"', pos)
                skeleton.extend(chunk[pos:] if quote < 0 else chunk[pos:quote])
                if len(skeleton) > MAX_SKELETON:
                    raise HostileBody(f"more than {MAX_SKELETON} bytes of JSON besides the image")
                if quote < 0:
                    break
                in_string, is_big, start, pos = True, False, offset + quote + 1, quote + 1
                piece.clear()
                continue
            found = _QUOTE_OR_ESCAPE.search(chunk, pos)
            if found is None:
                take(chunk[pos:])
                break
            at = found.start()
            if chunk[at] == 0x5C:  # a backslash: the next byte is escaped, whatever it is
                take(chunk[pos : at + 2])
                escaped = at + 1 >= len(chunk)
                pos = at + 2
                continue
            take(chunk[pos:at])
            if is_big:
                skeleton.extend(f'"\\u0000big:{len(big)}"'.encode())
                big.append(BigString(start, offset + at))
            else:
                skeleton.extend(b'"' + piece + b'"')
            in_string, pos = False, at + 1
        offset += len(chunk)
    try:
        return Parsed(json.loads(bytes(skeleton)), tuple(big))
    except RecursionError:
        raise HostileBody("JSON nested too deeply") from None
    except ValueError as exc:
        raise MalformedBody(str(exc)[:100]) from None


class Base64Writer:
    """Lenient base64, decoded as it comes: line breaks (MIME), spaces, missing padding, the URL-safe alphabet and
    a `data:image/png;base64,` prefix are accepted; any other character is not."""

    def __init__(self, out: IO[bytes], limit: int) -> None:
        self._out, self._limit = out, limit
        self._carry = ""
        self._first, self._ended = True, False
        self.written = 0

    def feed(self, text: str) -> None:
        if self._first:
            text = text.lstrip()
            if text.startswith("data:"):
                comma = text.find(",", 0, 200)
                if comma < 0:
                    raise NotBase64("a data: URL without its comma")
                text = text[comma + 1 :]
            self._first = not text
        text = text.translate(_NORMALISE)
        if "=" in text:  # padding: only more padding may follow it
            head, _, tail = text.partition("=")
            if tail.strip("="):
                raise NotBase64("data after the padding")
            text, ended = head, True
        else:
            ended = False
        if text and self._ended:
            raise NotBase64("data after the padding")
        self._ended = self._ended or ended
        if _NOT_BASE64.search(text):
            raise NotBase64("a character outside the base64 alphabet")
        text = self._carry + text
        whole = len(text) - len(text) % 4
        self._carry = text[whole:]
        if whole:
            self._write(binascii.a2b_base64(text[:whole]))

    def finish(self) -> int:
        """Decode what is left (padding added where it was missing); the number of bytes written."""
        if len(self._carry) == 1:
            raise NotBase64("a dangling character at the end")
        if self._carry:
            self._write(binascii.a2b_base64(self._carry + "=" * (-len(self._carry) % 4)))
            self._carry = ""
        return self.written

    def _write(self, data: bytes) -> None:
        self.written += len(data)
        if self.written > self._limit:
            raise TooLarge(f"over {self._limit} bytes once decoded")
        self._out.write(data)


def decode_base64(source: IO[bytes], text: str | BigString, out: IO[bytes], limit: int) -> int:
    """Decode `text` (a JSON string, or one left in `source`) into `out`; the number of bytes written."""
    writer = Base64Writer(out, limit)
    if isinstance(text, str):
        writer.feed(text)
        return writer.finish()
    source.seek(text.start)
    left, carry = text.end - text.start, b""
    while left > 0 or carry:
        raw = source.read(min(CHUNK, left)) if left > 0 else b""
        if left > 0 and not raw:
            raise NotBase64("the answer ended inside the string")
        left -= len(raw)
        raw = carry + raw
        cut = _escape_safe_end(raw) if left > 0 else len(raw)  # an escape cut in two waits for its rest
        raw, carry = raw[:cut], raw[cut:]
        if not raw:
            continue
        try:
            piece = json.loads(b'"' + raw + b'"', strict=False) if b"\\" in raw else raw.decode("ascii")
        except ValueError:  # UnicodeDecodeError too
            raise NotBase64("not a clean JSON string") from None
        writer.feed(piece)
    return writer.finish()


def _escape_safe_end(raw: bytes) -> int:
    """Where `raw` can be cut without splitting a JSON escape (`\\n`, `\\/`, `\\u002B`)."""
    at = raw.rfind(b"\\", max(0, len(raw) - 6))
    if at < 0:
        return len(raw)
    run = at
    while run > 0 and raw[run - 1] == 0x5C:
        run -= 1
    if (at - run) % 2:  # the backslash at `at` is the second of an escaped backslash pair
        return len(raw)
    needed = 6 if raw[at + 1 : at + 2] == b"u" else 2
    return at if at + needed > len(raw) else len(raw)
