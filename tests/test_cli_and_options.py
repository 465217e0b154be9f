"""The one-shot CLI against the fake image API, and prompt-flag parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bot.options import AspectRatio, OptionError, Resolution, parse_prompt
from tests.processes import bot_env, run


async def _cli(args: list[str], img, cwd: Path) -> tuple[int, str, str]:
    env = bot_env(img=img, TELEGRAM_BOT_TOKEN="123:unused", IMAGE_API_RETRY_BACKOFF="0.05")
    return await run("generate", *args, env=env, cwd=cwd)


async def test_generate_saves_the_image(img, tmp_path):
    code, out, err = await _cli(["a red fox", "--ar", "16:9", "--size", "2k"], img, tmp_path)
    assert code == 0, err
    path = Path(out.split()[0])
    path = path if path.is_absolute() else tmp_path / path
    assert path.parent == tmp_path / "output" and path.name.endswith("_a-red-fox_16x9_2K.png")
    assert Image.open(path).size == (2752, 1536)
    assert path.read_bytes() == img.image_for(img.requests[0])
    assert "2752×1536" in out and " s" in out
    assert img.requests[0].body["size"] == "2K"


async def test_generate_out_dir_and_flags_in_prompt(img, tmp_path):
    code, out, err = await _cli(["a tower --ar 9:16 --4k", "--out", str(tmp_path / "pics")], img, tmp_path)
    assert code == 0, err
    assert (img.requests[0].body["aspect_ratio"], img.requests[0].body["size"]) == ("9:16", "4K")
    assert list((tmp_path / "pics").glob("*_a-tower_9x16_4K.png"))


async def test_generate_edit_keeps_the_pictures_shape(img, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (900, 1600), (10, 20, 30)).save(photo, "JPEG")
    code, out, err = await _cli(["make it night --v 6", "--image", str(photo), "--size", "1K"], img, tmp_path)
    assert code == 0, err
    (request,) = img.requests
    assert request.path.endswith("/edits") and request.body["aspect_ratio"] == "9:16"  # as a chat preselects it
    assert request.body["prompt"] == "make it night" and "--v 6" in err


async def test_generate_failure_is_one_clear_line(img, tmp_path):
    img.fail_next(403)
    code, out, err = await _cli(["a fox", "--ar", "1:1", "--size", "1K"], img, tmp_path)
    assert code == 1 and "credit is used up" in err and "Traceback" not in err
    assert not (tmp_path / "output").exists() or not list((tmp_path / "output").iterdir())


async def test_generate_mismatch_warns(img, tmp_path):
    img.size_next(1024, 1024)
    code, out, err = await _cli(["wide", "--ar", "21:9", "--size", "4K"], img, tmp_path)
    assert code == 0 and "warning: asked 21:9 · 4K" in err and "1024×1024" in err


async def test_generate_bad_value(img, tmp_path):
    code, _, err = await _cli(["x", "--ar", "7:3"], img, tmp_path)
    assert code == 2 and "7:3" in err and img.requests == []


@pytest.mark.parametrize(
    ("text", "prompt", "ratio", "size"),
    [
        ("a red fox --ar 16:9 --size 2k", "a red fox", "16:9", "2K"),
        ("--ASPECT 9x16 tall --2K", "tall", "9:16", "2K"),
        ("—ar 21:9 iphone dashes –size 4k", "iphone dashes", "21:9", "4K"),
        ("cat --ar=3:2", "cat", "3:2", None),
        ("plain words only", "plain words only", None, None),
        ("keep\nnew lines --1k", "keep\nnew lines", None, "1K"),
        ("not-a-flag--ar 16:9", "not-a-flag--ar 16:9", None, None),
    ],
)
def test_parse_prompt(text, prompt, ratio, size):
    parsed = parse_prompt(text)
    assert parsed.prompt == prompt
    assert parsed.aspect_ratio == (AspectRatio(ratio) if ratio else None)
    assert parsed.size == (Resolution(size) if size else None)


@pytest.mark.parametrize(
    ("text", "flag", "value"), [("x --ar 7:3", "--ar", "7:3"), ("x --size 8k", "--size", "8k"), ("x --ar", "--ar", "")]
)
def test_parse_prompt_errors(text, flag, value):
    with pytest.raises(OptionError) as info:
        parse_prompt(text)
    assert (info.value.flag, info.value.value) == (flag, value)


def test_the_size_an_image_really_is():
    from bot.options import AspectRatio, ImageRequest, Resolution

    wide = ImageRequest("p", AspectRatio("16:9"), Resolution("2K"))
    assert wide.size_made(2752, 1536) == Resolution.K2  # as asked
    assert wide.size_made(1376, 768) == Resolution.K1  # smaller than asked
    assert wide.size_made(5504, 3072) == Resolution.K4  # larger
    assert wide.size_made(1024, 1024) == Resolution.K1  # another shape altogether
