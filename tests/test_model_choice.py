"""Choosing models: IMAGE_MODELS / IMAGE_MODEL / MODEL_CREDITS, `--model` and the models' own flags in a prompt,
`imagine-bot generate` per model against the fake, and a made-up fifth profile that needs nothing but its module
and its name in the registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PIL import Image

from bot import imagemodels
from bot.config import ImageSettings, Settings, SettingsError, load_settings
from bot.imagegen import ImageClient
from bot.imagemodels import PROFILES, Profile, find_profile, profile_for
from bot.imagemodels.profile import Option, References, ratio_option, size_option
from bot.options import ImageRequest, OptionError, parse_prompt
from bot.quota import Quota
from tests.processes import bot_env, run, spawn

GPT, SEEDREAM = "gpt-image-2", "doubao-seedream-4-5-251128"
KNOWN = "nano-banana-2, gemini-3-pro-image, gpt-image-2, doubao-seedream-4-5-251128"


def _image(**env: str) -> ImageSettings:
    return load_settings(ImageSettings, image_api_key="sk-x", **env)


# ---- settings ----


def test_image_models_names_the_offer_and_maps_gateway_ids():
    settings = _image(image_models="gpt-image-2=gpt-image-2-ssvip, nano-banana-2,doubao-seedream-4-5-251128")
    assert settings.offered == [GPT, "nano-banana-2", SEEDREAM] and settings.default_model == GPT
    assert settings.gateway_ids == {GPT: "gpt-image-2-ssvip", "nano-banana-2": "nano-banana-2", SEEDREAM: SEEDREAM}
    assert settings.describe_models() == f"models gpt-image-2 (as gpt-image-2-ssvip), nano-banana-2, {SEEDREAM}"


def test_without_either_setting_it_is_nano_banana_2_alone():
    settings = _image()
    assert (
        settings.models == (("nano-banana-2", "nano-banana-2"),) and settings.describe_models() == "model nano-banana-2"
    )


def test_image_model_is_a_one_model_list_and_image_models_wins():
    assert _image(image_model="gemini-3-pro-image").offered == ["gemini-3-pro-image"]
    assert _image(image_model="nano-banana-2").gateway_ids == {"nano-banana-2": "nano-banana-2"}
    assert _image(image_model="nano-banana-2=nb2-hd").gateway_ids == {"nano-banana-2": "nb2-hd"}
    assert _image(image_model="nano-banana-2", image_models=f"{GPT},nano-banana-2").offered == [GPT, "nano-banana-2"]
    with pytest.raises(SettingsError, match="IMAGE_MODEL is invalid: names one model"):
        _image(image_model=f"{GPT},nano-banana-2")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("gpt-image-3", f"unknown model 'gpt-image-3'; known: {KNOWN}"),
        ("nano-banana-2,nano-banana-2", "nano-banana-2 is listed twice"),
        ("gpt-image-2=", "'gpt-image-2=': write gpt-image-2=<the gateway's id for it>"),
    ],
)
def test_a_bad_image_models_is_one_line(value, says):
    with pytest.raises(SettingsError) as info:
        _image(image_models=value)
    assert str(info.value).startswith(f"IMAGE_MODELS is invalid: {says}") and "\n" not in str(info.value)


def test_an_old_image_model_id_says_how_to_map_it():
    with pytest.raises(SettingsError, match=r"unknown model 'nano-banana-2-hd'.*IMAGE_MODELS=<model>=<id>"):
        _image(image_model="nano-banana-2-hd")


def _bot(**env: object) -> Settings:
    return load_settings(Settings, image_api_key="sk-x", telegram_bot_token="1:abc", **env)


def test_model_credits_override_the_profiles_and_quota_credits():
    settings = _bot(
        model_credits="gemini-3-pro-image:4K=5, gpt-image-2:high=3,nano-banana-2:2k=2",
        quota_credits_1k=0,
        quota_credits_4k=3,
    )
    table = settings.credit_table
    assert table["gemini-3-pro-image"] == {"1K": 2, "2K": 2, "4K": 5}
    assert table[GPT] == {"low": 1, "medium": 2, "high": 3, "4K": 2}
    assert table["nano-banana-2"] == {"1K": 0, "2K": 2, "4K": 3}  # QUOTA_CREDITS_*, then MODEL_CREDITS
    quota = Quota(None, settings)  # type: ignore[arg-type]  # credits only: no store needed
    assert quota.cost(ImageRequest("x", model=GPT, options={"quality": "high", "size": "4K"})) == 6
    assert quota.credits(ImageRequest("x").size) == 0 and quota.cost(ImageRequest("x", "1:1", "4K")) == 3


def test_default_credits_are_todays_for_nano_banana_2():
    settings = _bot()
    assert [settings.credits_for(ImageRequest("x", "1:1", s)) for s in ("1K", "2K", "4K")] == [1, 1, 2]


def test_every_mistake_in_model_credits_is_named():
    with pytest.raises(SettingsError) as info:
        _bot(model_credits="gpt-image-2:ultra=3,foo:1K=1,gemini-3-pro-image:4K=lots,4K=2")
    line = str(info.value)
    assert line.startswith("MODEL_CREDITS is invalid: ") and "\n" not in line
    assert "gpt-image-2 has no choice 'ultra'" in line and "unknown model 'foo'" in line
    assert "'gemini-3-pro-image:4K=lots': credits must be a whole number" in line
    assert "'4K=2': write model:choice=credits" in line


# ---- --model and a model's own flags in a prompt ----

OFFERED = ["nano-banana-2", "gemini-3-pro-image", GPT, SEEDREAM]


@pytest.mark.parametrize(
    ("alias", "model"),
    [
        ("pro", "gemini-3-pro-image"),
        ("GPT", GPT),
        ("seedream", SEEDREAM),
        ("banana", "nano-banana-2"),
        ("nb2", "nano-banana-2"),
    ],
)
def test_model_flag_takes_names_and_aliases(alias, model):
    parsed = parse_prompt(f"a fox —model {alias} in snow", OFFERED)
    assert parsed.model == model and parsed.prompt == "a fox in snow"


def test_unknown_model_names_the_models_on_offer():
    with pytest.raises(OptionError) as info:
        parse_prompt("a fox --model gpt", ["nano-banana-2", SEEDREAM])
    assert info.value.flag == "--model" and info.value.valid == ["nano-banana-2", SEEDREAM]


def test_a_models_own_flag_is_checked_against_the_model_chosen():
    parsed = parse_prompt("a fox --quality High --ar 16:9 --1k", OFFERED)
    assert parsed.options == {"quality": "high"}
    assert parsed.choose(profile_for(GPT)) == ({"ratio": "16:9", "size": "1K", "quality": "high"}, ())
    # a model that does not take it: named as unknown flags are
    assert parsed.choose(profile_for("nano-banana-2")) == ({"ratio": "16:9", "size": "1K"}, ("--quality high",))
    with pytest.raises(OptionError) as info:  # 1K where the model has none
        parsed.choose(profile_for(SEEDREAM))
    assert (info.value.flag, info.value.valid, info.value.model) == ("--size", ["2K", "4K"], SEEDREAM)
    with pytest.raises(OptionError):
        parse_prompt("x --quality ultra", OFFERED).choose(profile_for(GPT))


def test_without_models_on_offer_the_prompt_reads_as_before():
    parsed = parse_prompt("a fox --model gpt --quality high")
    assert parsed.model is None and parsed.options == {}
    assert parsed.unknown == ("--model gpt", "--quality high")


# ---- a made-up fifth model ----

TOY_PIXELS = {
    (r, s): (w * (1 + i), w * (1 + i)) for r in ("1:1", "16:9") for i, (s, w) in enumerate((("1K", 1024), ("2K", 1024)))
}
TOY_PIXELS.update({("16:9", "1K"): (1376, 768), ("16:9", "2K"): (2752, 1536)})


def _toy_fields(options, pixels, count):
    """A model the gateway serves with nano-banana-2's request shape, plus its own `style` (the gateway lets
    nano-banana-2's requests carry fields it does not use)."""
    return {"n": 1, "aspect_ratio": options["ratio"], "size": options["size"], "style": options["style"]}


TOY = Profile(  # what bot/imagemodels/toy_image_1.py would hold
    name="toy-image-1",
    label="Toy 1",
    aliases=("toy",),
    options=(
        ratio_option(("1:1", "16:9")),
        size_option(("1K", "2K")),
        Option("style", ("vivid", "natural"), "natural", "option_style", ("style",)),
    ),
    pixels=TOY_PIXELS,
    credits={"vivid": 3},
    api="images",
    path="/v1/images/generations",
    edit_path="/v1/images/edits",
    fields=_toy_fields,
    references=References("multipart", 2),
)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(imagemodels.PROFILES, TOY.name, TOY)  # "naming it in the registry"
    return TOY


async def test_a_made_up_profile_needs_nothing_else(toy, img, tmp_path):
    settings = load_settings(
        Settings,
        image_api_key=img.api_key,
        telegram_bot_token="1:abc",
        image_api_base_url=img.base_url,
        image_models="toy-image-1=nano-banana-2,nano-banana-2",
        model_credits="toy-image-1:2K=2",
    )
    assert settings.default_model == "toy-image-1" and find_profile("TOY") is toy
    parsed = parse_prompt("a kite --model toy --style vivid --ar 16:9 --2k", settings.offered)
    options, not_taken = parsed.choose(toy)
    request = ImageRequest(parsed.prompt, model=parsed.model, options=options)
    assert not_taken == () and request.label == "16:9 · 2K · vivid" and request.expected_pixels == (2752, 1536)
    assert ImageRequest.from_json(request.prompt, request.to_json()) == request
    assert settings.credits_for(request) == 6 and request.size_made(1376, 768) == "1K"
    client = ImageClient.from_settings(settings, max_connections=2, spool_dir=tmp_path)
    client.open()
    try:
        image = await client.generate(request)
    finally:
        await client.aclose()
    (rec,) = img.requests
    assert rec.body == {
        "model": "nano-banana-2",
        "prompt": "a kite",
        "n": 1,
        "aspect_ratio": "16:9",
        "size": "2K",
        "style": "vivid",
    }
    assert (image.width, image.height) == request.expected_pixels


# ---- imagine-bot generate, per model ----


async def _cli(args: list[str], img, cwd: Path, **env: str) -> tuple[int, str, str]:
    environ = bot_env(img=img, IMAGE_API_RETRY_BACKOFF="0.05", **{k.upper(): v for k, v in env.items()})
    return await run("generate", *args, env=environ, cwd=cwd)


def _saved(out: str, cwd: Path) -> Path:
    path = Path(out.split()[0])
    return path if path.is_absolute() else cwd / path


@pytest.mark.parametrize(
    ("args", "body", "pixels", "name"),
    [
        (
            ["a fox", "--model", "pro", "--ar", "16:9", "--size", "2K"],
            {
                "generationConfig": {
                    "responseModalities": ["IMAGE"],
                    "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
                }
            },
            (2752, 1536),
            "_a-fox_16x9_2K.png",
        ),
        (
            ["a fox --model gpt --quality high --ar 9:16"],
            {"quality": "high", "size": "768x1360", "n": 1},
            (768, 1360),
            "_a-fox_9x16_1K.png",
        ),
        (
            ["a fox", "--model", "gpt-image-2", "--quality", "low", "--size", "4k"],
            {"quality": "low", "size": "2880x2880"},
            (2880, 2880),
            "_a-fox_1x1_4K.png",
        ),
        (["a fox", "--model", "seedream", "--ar", "21:9"], {"size": "3136x1344"}, (3136, 1344), "_a-fox_21x9_2K.jpg"),
    ],
)
async def test_generate_with_each_model(img, tmp_path, args, body, pixels, name):
    code, out, err = await _cli(args, img, tmp_path)
    assert code == 0, err
    (rec,) = img.requests
    assert {k: rec.body[k] for k in body} == body
    path = _saved(out, tmp_path)
    assert path.name.endswith(name) and Image.open(path).size == pixels
    assert path.read_bytes() == img.image_for(rec) and "warning" not in err


async def test_generate_sends_the_mapped_gateway_id(img, tmp_path):
    code, _, err = await _cli(["a fox"], img, tmp_path, image_models="gpt-image-2=gpt-image-2-ssvip")
    assert code == 0, err
    assert img.requests[0].body["model"] == "gpt-image-2-ssvip" and "with gpt-image-2" in err


async def test_generate_edit_with_each_models_references(img, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (900, 1600), (10, 20, 30)).save(photo, "JPEG")
    code, out, err = await _cli(["make it night", "--model", "seedream", "--image", str(photo)], img, tmp_path)
    assert code == 0, err
    (rec,) = img.requests
    assert rec.path == "/v1/images/generations" and rec.images == [photo.read_bytes()]
    assert rec.body["size"] == "1600x2848"  # the picture's shape, at Seedream's smallest tier


async def test_generate_honest_size_check_per_model(img, tmp_path):
    img.size_next(2048, 2048)
    code, _, err = await _cli(["wide", "--model", "seedream", "--ar", "16:9"], img, tmp_path)
    assert code == 0 and "warning: asked 16:9 · 2K (2848×1600), the service returned 2048×2048" in err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["x", "--model", "dall-e"],
            "I don't know the model “dall-e”. Use one of: nano-banana-2, gemini-3-pro-image, "
            "gpt-image-2 or doubao-seedream-4-5-251128.",
        ),
        (["x --model nope"], "I don't know the model “nope”"),
        (["x", "--quality", "high"], "--quality is not an option of nano-banana-2"),
        (
            ["x", "--model", "gpt", "--quality", "ultra"],
            "gpt-image-2 has no --quality “ultra”. Use one of: low, medium or high.",
        ),
        (["x", "--model", "seedream", "--size", "1K"], "doubao-seedream-4-5-251128 has no --size “1K”"),
    ],
)
async def test_generate_refuses_what_the_model_does_not_take(img, tmp_path, args, says):
    code, _, err = await _cli(args, img, tmp_path)
    assert code == 2 and says in err and img.requests == [] and len(err.strip().splitlines()) == 1


async def test_a_prompt_flag_the_model_does_not_take_is_named_and_left_out(img, tmp_path):
    code, _, err = await _cli(["a fox --quality high"], img, tmp_path)
    assert code == 0 and "not options here (left out of the prompt): --quality high" in err
    assert img.requests[0].body["prompt"] == "a fox"


async def test_help_lists_the_models(img, tmp_path):
    proc = await spawn("generate", "--help", env=bot_env(), cwd=tmp_path)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode()
    assert proc.returncode == 0 and "--quality QUALITY" in text
    for profile in PROFILES.values():
        assert f"  {profile.name} ({', '.join(profile.aliases)})" in text
    assert "--size 2K/4K; up to 14 --image" in text


async def test_an_unknown_image_models_stops_at_start_in_one_line(img, tmp_path):
    code, _, err = await _cli(["a fox"], img, tmp_path, image_models="nano-banana-2,midjourney")
    assert code == 2 and img.requests == []
    (line,) = err.strip().splitlines()
    assert line.startswith(f"imagine-bot: IMAGE_MODELS is invalid: unknown model 'midjourney'; known: {KNOWN}")
