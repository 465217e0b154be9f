"""Answer bodies read piece by piece: every cut between pieces (escapes, quotes) must give the same result."""

from __future__ import annotations

import base64
import io
import json
import os

import pytest

from bot import bodies


@pytest.fixture(params=[5, 7, 64, 1 << 20])
def chunk(request, monkeypatch):
    monkeypatch.setattr(bodies, "CHUNK", request.param)
    monkeypatch.setattr(bodies, "BIG_STRING", 50)
    return request.param


@pytest.mark.parametrize("escape", ["plain", "slashes", "unicode", "mime"])
def test_a_big_string_decodes_the_same_wherever_the_pieces_are_cut(chunk, escape):
    image = os.urandom(3000)
    text = base64.encodebytes(image).decode() if escape == "mime" else base64.b64encode(image).decode()
    raw = json.dumps({"created": 1, "note": 'a "quoted" \\ word', "data": [{"b64_json": text}]})
    if escape == "slashes":
        raw = raw.replace("/", "\\/")
    elif escape == "unicode":
        raw = raw.replace("+", "\\u002B")
    body = io.BytesIO(raw.encode())
    parsed = bodies.parse_json(body)
    assert parsed.value["note"] == 'a "quoted" \\ word'
    big = parsed.resolve(parsed.value["data"][0]["b64_json"])
    assert isinstance(big, bodies.BigString)
    out = io.BytesIO()
    assert bodies.decode_base64(body, big, out, 10_000) == len(image)
    assert out.getvalue() == image


@pytest.mark.parametrize("text", ["@@not-base64@@", "QUJD=QUJD", "QUJDR", "QUJD\u00e9", "data:image/png;base64"])
def test_what_is_not_base64_is_refused(text):
    with pytest.raises(bodies.NotBase64):
        bodies.decode_base64(io.BytesIO(), text, io.BytesIO(), 1000)


def test_the_decoded_cap_holds():
    with pytest.raises(bodies.TooLarge):
        bodies.decode_base64(io.BytesIO(), base64.b64encode(bytes(2000)).decode(), io.BytesIO(), 1000)


def test_json_beside_the_image_is_bounded(monkeypatch):
    monkeypatch.setattr(bodies, "MAX_SKELETON", 1000)
    with pytest.raises(bodies.HostileBody):
        bodies.parse_json(io.BytesIO(b"[" + b"1," * 1000 + b"1]"))


def test_json_nested_too_deeply_is_hostile():
    with pytest.raises(bodies.HostileBody):
        bodies.parse_json(io.BytesIO(b"[" * 100_000 + b"]" * 100_000))
