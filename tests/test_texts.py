"""The texts (one TOML file per language in bot/locales) and the failure kinds (bot/failures.py) agree: every
language has every key with the same placeholders, every key the code asks for exists, and every failure kind has
its sentence, its /stats label, its operator's line and, when it alerts, the admins' message."""

from __future__ import annotations

import re
import string
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from bot import delivery, imagegen
from bot.__main__ import shell_error
from bot.failures import ADMIN_ALERTS, FAILURES, KINDS, failure, label_key, text_key
from bot.handlers.admin import stats_text
from bot.models import Job, JobStatus, Origin
from bot.options import AspectRatio, ImageRequest, Resolution
from bot.texts import EN, LANGUAGES, TEXTS, t

BOT = Path(__file__).resolve().parent.parent / "bot"
SOURCES = {path: path.read_text(encoding="utf-8") for path in sorted(BOT.rglob("*.py"))}
OTHERS = [lang for lang in TEXTS if lang != "en"]


def _fields(template: str) -> set[str]:
    """The placeholder names of a str.format template (`{mb:.0f}` → `mb`)."""
    return {re.split(r"[.\[!:]", name)[0] for _, name, _, _ in string.Formatter().parse(template) if name is not None}


def _locale_files() -> dict[str, str]:
    folder = resources.files("bot").joinpath("locales")
    return {f.name: f.read_text(encoding="utf-8") for f in folder.iterdir() if f.name.endswith(".toml")}


def test_every_language_is_a_file_in_the_package():
    files = _locale_files()
    assert set(files) == {"en.toml", "zh.toml", "zh-hant.toml"}
    assert LANGUAGES == {"en": "English", "zh": "简体中文", "zh-hant": "繁體中文"}
    for name, text in files.items():
        assert tomllib.loads(text) == TEXTS[name.removesuffix(".toml")]
        assert all(isinstance(value, str) for value in TEXTS[name.removesuffix(".toml")].values())


@pytest.mark.parametrize("lang", OTHERS)
def test_every_language_has_every_key_with_the_same_placeholders(lang):
    texts = TEXTS[lang]
    assert sorted(set(EN) - set(texts)) == [], f"{lang} misses these"
    assert sorted(set(texts) - set(EN)) == [], f"{lang} has keys English does not"
    differ = {key: (_fields(EN[key]), _fields(texts[key])) for key in EN if _fields(EN[key]) != _fields(texts[key])}
    assert differ == {}
    assert all(texts[key].strip() for key in texts), "an empty text"


def test_traditional_chinese_is_written_in_traditional_characters():
    """Characters of Simplified Chinese that Traditional writes otherwise (the three texts once missing from
    Traditional Chinese fell back to English; a copy of the Simplified ones would be as wrong)."""
    simplified = set(
        "万与个为么仅从们会体关内册写删别务动单压参发变启员响图坏处复够对将属并应开张当态总戏报拦择损换数断"
        "无时显暂机条来检没满滤灯点状现画盖盘简红约纸经绘给绝继续编缩网联腾获视认让许设识诉试该语误说请"
        "调败贴赠跃轮载辑边过还这进远选钟钥钮错长问间队随静页项频题额黄"
    )
    wrong = {key: sorted(simplified & set(text)) for key, text in TEXTS["zh-hant"].items() if simplified & set(text)}
    assert wrong == {}


def test_every_key_the_code_asks_for_exists():
    literal = re.compile(r"""\bt\(\s*["']([A-Za-z0-9_]+)["']""")
    asked = {(path.name, key) for path, source in SOURCES.items() for key in literal.findall(source)}
    assert len(asked) > 50  # the scan sees the calls
    assert sorted((name, key) for name, key in asked if key not in EN) == []


def test_every_failure_kind_has_its_texts_and_operator_line():
    for row in FAILURES:
        for lang, texts in TEXTS.items():
            assert f"error_{row.kind}" in texts and f"kind_{row.kind}" in texts, (lang, row.kind)
            if row.alert:
                assert f"admin_alert_{row.kind}" in texts, (lang, row.kind)
        assert row.operator.format(url="https://example.test").strip(), row.kind
    assert len(KINDS) == len(FAILURES)
    families = {"error_": set(KINDS), "kind_": set(KINDS) | {"unknown"}, "admin_alert_": set(ADMIN_ALERTS)}
    for prefix, kinds in families.items():
        assert {key.removeprefix(prefix) for key in EN if key.startswith(prefix)} == kinds, prefix


def test_every_kind_the_code_records_is_in_the_table():
    """The image client's error classes, the references' refusals, delivery, the worker and the store: each kind
    they record is a row of bot/failures.py (stored kinds keep their names)."""
    errors = [imagegen.ImageGenError, *_subclasses(imagegen.ImageGenError)]
    assert {error.kind for error in errors} <= set(KINDS)
    assert all(error.retryable == KINDS[error.kind].retryable for error in errors)
    assert {
        imagegen.RateLimitedError.retryable,
        imagegen.UpstreamError.retryable,
        imagegen.GenerationTimeout.retryable,
        imagegen.AuthError.retryable,
        imagegen.BadAnswerError.retryable,
    } == {True, False}
    assert delivery.DeliveryError.kind in KINDS
    refused = {kind for source in SOURCES.values() for kind in re.findall(r'UnusableReference\(\s*"(\w+)"', source)}
    assert refused and {f"reference_{kind}" for kind in refused} <= set(KINDS)
    recorded = {
        kind for source in SOURCES.values() for kind in re.findall(r'\b_fail(?:ed)?\(\s*\w+,\s*"(\w+)"', source)
    }
    recorded |= set(re.findall(r'error_kind="(\w+)"', SOURCES[BOT / "store" / "leases.py"]))
    assert recorded and recorded <= set(KINDS)
    assert ADMIN_ALERTS == {"auth", "quota", "endpoint", "storage"}


def _subclasses(cls: type) -> list[type]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


def test_an_unknown_or_missing_kind_reads_as_the_bots_own_failure():
    assert text_key(None) == text_key("gone_in_a_later_version") == "error_internal"
    assert failure("gone_in_a_later_version") is KINDS["internal"]
    assert label_key(None) == label_key("gone_in_a_later_version") == "kind_unknown"
    assert t(text_key("reference_download"), "zh-TW", number=2, name="a.png").startswith("無法從 Telegram 下載參考圖 2")


@pytest.mark.parametrize("kind", ["bad_answer", "too_many_pixels", "reference_too_many_pixels", "reference_animated"])
def test_stats_name_every_kind_in_the_admins_language(kind):
    origin = Origin(1, 1)
    jobs = [
        Job(
            f"j{n}", origin, ImageRequest("x", AspectRatio.SQUARE, Resolution.K1), status=JobStatus.FAILED, error_kind=k
        )
        for n, k in enumerate([kind, None])
    ]
    for lang in TEXTS:
        text = stats_text(jobs, 0, lang)
        assert kind not in text and t(f"kind_{kind}", lang) in text and t("kind_unknown", lang) in text


def test_a_failure_kind_no_longer_known_is_shown_to_admins_as_stored():
    jobs = [
        Job(
            "j",
            Origin(1, 1),
            ImageRequest("x", AspectRatio.SQUARE, Resolution.K1),
            status=JobStatus.FAILED,
            error_kind="from_a_newer_version",
        )
    ]
    assert "from_a_newer_version 1" in stats_text(jobs, 0, "en")


@pytest.mark.parametrize("lang", TEXTS)
def test_traditional_chinese_users_get_their_own_sentences(lang):
    """Three failure sentences once fell back to English for Traditional Chinese."""
    for key in ("error_bad_answer", "error_too_many_pixels", "error_reference_too_many_pixels"):
        text = t(key, lang, number=3, name="cat.png")
        assert (text == EN[key].format(number=3, name="cat.png")) == (lang == "en"), (lang, key)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (imagegen.BadAnswerError("answer refused: nested too deep"), "no working service sends"),
        (imagegen.TooManyPixelsError("9000×9000 is far beyond"), "far larger than any size it offers"),
        (imagegen.SpoolFullError("cannot write to /out: No space left on device"), "no space left on the disk"),
        (imagegen.AuthError("invalid token", status=401), "refused IMAGE_API_KEY"),
        (imagegen.EndpointError("not found", status=404), "nothing answers image requests at https://gw.test/v1"),
    ],
)
def test_the_operator_hears_what_failed(error, words):
    line = shell_error(error, "https://gw.test/v1")
    assert words in line and error.detail in line and "the image API failed" not in line
