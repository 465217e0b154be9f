"""The chat models on the DMXAPI key: OpenAI's ``POST /v1/chat/completions`` rules and answers (issue 27).

The fake image API (tests/fakes/imageapi.py) fakes the whole gateway, so it serves this route on the same server
and key. ``check_chat(body, served)`` turns a request into a ``ChatPlan`` or raises ``Refused`` in OpenAI's shape
``{"error": {message, type, param, code}}`` with OpenAI's messages and codes (openai-python's
``types/chat/completion_create_params.py``, ``chat_completion.py``); ``completion`` writes the answer
(``chat.completion`` with ``choices[0].message`` and ``usage``).

Where the fake is stricter than OpenAI it says so, so a client cannot lean on a guess:

* only ``system``, ``developer``, ``user`` and ``assistant`` messages (no tools), at least one ``user`` message,
  and no blank text (the gateway's Gemini upstream refuses empty parts);
* the request fields the fake serves are ``FIELDS``; OpenAI's other fields (tools, audio, logprobs…) are 400
  ``unsupported_parameter``, a name OpenAI does not know is its ``Unrecognized request argument supplied``;
* ``n`` is 1 and ``stream`` is false: the fake answers one JSON body, never server-sent events;
* ``max_tokens`` and ``max_completion_tokens`` are not both set.

Tokens are counted the fake's way (an ASCII character is a quarter token, any other a whole one), the same for
the context limit, ``max_tokens`` truncation and ``usage``.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.imagemodels import MODEL_IDS, Refused


@dataclass(frozen=True)
class ChatLimits:
    context: int  # tokens of the messages plus the answer
    output: int  # the most max_tokens may ask


#: chat model id -> its limits, as the vendors publish them: the models the fake knows.
CHAT_MODELS = {
    "gpt-4o-mini": ChatLimits(128_000, 16_384),
    "gemini-2.5-flash": ChatLimits(1_048_576, 65_536),
    "deepseek-chat": ChatLimits(65_536, 8_192),
}
#: a model the key's group serves that ``CHAT_MODELS`` does not list gets these.
DEFAULT_LIMITS = ChatLimits(128_000, 8_192)
ROLES = ("system", "developer", "user", "assistant")
FINISH_REASONS = ("stop", "length", "content_filter", "tool_calls")
#: the request fields the fake serves (checked, or accepted and ignored: seed, user, metadata, store).
FIELDS = (
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "stream",
    "stream_options",
    "response_format",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "user",
    "metadata",
    "store",
)
#: OpenAI's other request fields: real, but beyond what the fake serves.
UNSUPPORTED = (
    "audio",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "modalities",
    "moderation",
    "parallel_tool_calls",
    "prediction",
    "prompt_cache_key",
    "prompt_cache_options",
    "prompt_cache_retention",
    "reasoning_effort",
    "safety_identifier",
    "service_tier",
    "tool_choice",
    "tools",
    "top_logprobs",
    "verbosity",
    "web_search_options",
)
_MESSAGE_KEYS = {
    "system": ("role", "content", "name"),
    "developer": ("role", "content", "name"),
    "user": ("role", "content", "name"),
    "assistant": ("role", "content", "name", "refusal"),
}
_PART_TYPES = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url"),
    "assistant": ("text", "refusal"),
}
_SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class ChatPlan:
    """A valid request: what the answer needs."""

    model: str
    system: str  # the system and developer messages' text, joined by blank lines
    user: str  # the last user message's text
    prompt_tokens: int
    max_tokens: int | None = None  # max_tokens or max_completion_tokens
    json_mode: str = "text"  # text, json_object or json_schema
    schema: dict = field(default_factory=dict)  # json_schema.schema


@dataclass
class ChatRecorded:
    """One chat request as the fake saw it: ``params`` are the body's fields beside ``model`` and ``messages``;
    ``system`` and ``user`` are filled once the request passed the rules; ``reply`` is the content answered."""

    path: str
    headers: dict[str, str]
    body: dict
    started: float
    request_id: str = ""
    model: str = ""
    messages: list = field(default_factory=list)
    params: dict = field(default_factory=dict)
    system: str = ""
    user: str = ""
    reply: str | None = None
    finished: float | None = None
    aborted: bool = False
    status: int | None = None


@dataclass(frozen=True)
class ChatReply:
    """An injected answer: exact ``content`` (None: null), ``refusal`` and ``finish_reason``."""

    content: str | None
    refusal: str | None = None
    finish_reason: str = "stop"


def tokens(text: str) -> int:
    """The fake's token count of ``text``."""
    ascii_chars = sum(1 for c in text if c.isascii())
    return math.ceil(ascii_chars / 4) + len(text) - ascii_chars


def rewrite(plan: ChatPlan) -> str:
    """The default answer: a deterministic "better prompt" made from the last user message."""
    return f"Improved: {plan.user.strip()}, highly detailed, soft light"


def default_content(plan: ChatPlan, text: str) -> tuple[str, str]:
    """(content, finish_reason) of the default answer ``text``: JSON when ``response_format`` asks for it, cut at
    ``max_tokens`` (``length``) as a model stops there."""
    if plan.json_mode == "json_object":
        text = json.dumps({"prompt": text}, ensure_ascii=False)
    elif plan.json_mode == "json_schema":
        props = plan.schema.get("properties") if isinstance(plan.schema.get("properties"), dict) else {}
        strings = [k for k, v in props.items() if isinstance(v, dict) and v.get("type") == "string"]
        text = json.dumps({k: text for k in strings or ["prompt"]}, ensure_ascii=False)
    if plan.max_tokens is not None and tokens(text) > plan.max_tokens:
        cut = text
        while tokens(cut) > plan.max_tokens:
            cut = cut[: -max(1, len(cut) // 8)]
        return cut, "length"
    return text, "stop"


def completion(plan: ChatPlan, rid: str, created: int, reply: ChatReply) -> dict[str, Any]:
    """A ``chat.completion`` answer as OpenAI writes it."""
    out = tokens(reply.content or "") + tokens(reply.refusal or "")
    return {
        "id": f"chatcmpl-{rid}",
        "object": "chat.completion",
        "created": created,
        "model": plan.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.content, "refusal": reply.refusal, "annotations": []},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": plan.prompt_tokens,
            "completion_tokens": out,
            "total_tokens": plan.prompt_tokens + out,
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fake",
    }


# ---- the rules -------------------------------------------------------------------------------


def _bad(message: str, param: str | None, code: str | None = "invalid_value", status: int = 400) -> Refused:
    return Refused(status, message, "openai", "invalid_request_error", code, param)


_JSON_TYPES = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a decimal",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _wrong_type(name: str, expected: str, value: Any) -> Refused:
    return _bad(
        f"Invalid type for '{name}': expected {expected}, but got {_kind(value)} instead.", name, "invalid_type"
    )


def _missing(name: str) -> Refused:
    return _bad(f"Missing required parameter: '{name}'.", name, "missing_required_parameter")


def _number(b: dict[str, Any], name: str, low: float, high: float, integer: bool = False) -> float | None:
    value = b.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        raise _wrong_type(name, "an integer" if integer else "a decimal", value)
    what = "integer" if integer else "decimal"
    if value < low:
        raise _bad(
            f"Invalid '{name}': {what} below minimum value. Expected a value >= {low}, but got {value} instead.",
            name,
            f"{what}_below_min_value",
        )
    if value > high:
        raise _bad(
            f"Invalid '{name}': {what} above maximum value. Expected a value <= {high}, but got {value} instead.",
            name,
            f"{what}_above_max_value",
        )
    return value


def check_chat(body: dict[str, Any], served: set[str]) -> ChatPlan:
    """The plan for a chat request whose key's group serves ``served``, or ``Refused``: the model first, then the
    fields, the messages, the parameters and the context length."""
    model = _check_model(body.get("model"), served)
    for key in body:
        if key in UNSUPPORTED:
            raise _bad(
                f"Unsupported parameter: '{key}' is not supported by the fake chat model.", key, "unsupported_parameter"
            )
        if key not in FIELDS:
            raise _bad(f"Unrecognized request argument supplied: {key}", None, None)
    if "messages" not in body:
        raise _missing("messages")
    system, user, prompt_tokens, all_text = _check_messages(body["messages"])
    limits = CHAT_MODELS.get(model, DEFAULT_LIMITS)
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    _number(body, "seed", -(2**63), 2**63 - 1, integer=True)
    max_tokens = None
    for name in ("max_tokens", "max_completion_tokens"):
        value = _number(body, name, 1, math.inf, integer=True)
        if value is None:
            continue
        if max_tokens is not None:
            raise _bad("Set only one of 'max_tokens' and 'max_completion_tokens' (the fake refuses both).", name)
        if value > limits.output:
            raise _bad(
                f"{name} is too large: {value}. This model supports at most {limits.output} completion "
                f"tokens, whereas you provided {value}.",
                name,
            )
        max_tokens = int(value)
    if _number(body, "n", 1, 128, integer=True) not in (None, 1):
        raise _bad("The fake chat model answers one choice: 'n' must be 1.", "n", "unsupported_value")
    _check_stream(body)
    _check_stop(body.get("stop"))
    json_mode, schema = _check_response_format(body.get("response_format"), all_text)
    if prompt_tokens + (max_tokens or 0) > limits.context:
        raise _bad(
            f"This model's maximum context length is {limits.context} tokens. However, your messages "
            f"resulted in {prompt_tokens} tokens. Please reduce the length of the messages.",
            "messages",
            "context_length_exceeded",
        )
    return ChatPlan(model, system, user, prompt_tokens, max_tokens, json_mode, schema)


def _check_model(model: Any, served: set[str]) -> str:
    """The gateway's model routing: an image model is not served here (400), a model it knows outside the key's
    group has no channel (503), a model nobody knows does not exist (404)."""
    if model is None:
        raise _missing("model")
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    if model in served:
        return model
    if model in MODEL_IDS:
        raise _bad(f"model {model} is not supported on /v1/chat/completions", None, "model_not_found")
    if model in CHAT_MODELS:
        raise Refused(
            503, f"当前分组 default 下对于模型 {model} 无可用渠道", "openai", "new_api_error", "model_not_found"
        )
    raise _bad(f"The model `{model}` does not exist or you do not have access to it.", None, "model_not_found", 404)


def _check_messages(messages: Any) -> tuple[str, str, int, str]:
    """(system text, last user text, prompt tokens, all text) of valid ``messages``."""
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array of objects", messages)
    if not messages:
        raise _bad(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    system, user, texts = [], None, []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if role not in ROLES:
            raise _bad(
                f"Invalid value: '{role}'. Supported values are: 'system', 'developer', 'user' and "
                "'assistant' (the fake serves no tools).",
                f"{where}.role",
            )
        extra = [k for k in message if k not in _MESSAGE_KEYS[role]]
        if extra:
            raise _bad(
                f"Additional properties are not allowed ('{extra[0]}' was unexpected) - 'messages.{i}'", where, None
            )
        if "content" not in message:
            raise _missing(f"{where}.content")
        text = _content_text(message["content"], role, f"{where}.content")
        if not text.strip():
            raise _bad(
                f"Invalid '{where}.content': the text is empty (the gateway's upstreams refuse blank text).",
                f"{where}.content",
            )
        texts.append(text)
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            user = text
    if user is None:
        raise _bad(
            "Invalid 'messages': at least one message with role 'user' is required (the gateway's "
            "upstreams refuse a request without one).",
            "messages",
        )
    prompt_tokens = sum(tokens(t) + 3 for t in texts) + 3  # a few tokens per message, as OpenAI counts them
    return "\n\n".join(system), user, prompt_tokens, "\n".join(texts)


def _content_text(content: Any, role: str, where: str) -> str:
    """The text of a message's content: a string, or an array of parts (the text parts joined by newlines)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _wrong_type(where, "one of a string or array of objects", content)
    if not content:
        raise _bad(
            f"Invalid '{where}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            where,
            "empty_array",
        )
    texts = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise _wrong_type(at, "an object", part)
        kind = part.get("type")
        if kind is None:
            raise _missing(f"{at}.type")
        allowed = _PART_TYPES[role]
        if kind not in allowed:
            raise _bad(
                f"Invalid value: '{kind}'. Supported values are: " + ", ".join(f"'{a}'" for a in allowed) + ".",
                f"{at}.type",
            )
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if image is None or (isinstance(image, dict) and url is None):
                raise _missing(f"{at}.image_url" if image is None else f"{at}.image_url.url")
            if not isinstance(url, str) or not re.match(r"(https?://\S+|data:image/[\w.+-]+;base64,)", url):
                raise _bad(
                    f"Invalid '{at}.image_url.url'. Expected a valid URL, but got a value with an invalid format.",
                    f"{at}.image_url.url",
                )
            continue
        value = part.get(kind)
        if value is None:
            raise _missing(f"{at}.{kind}")
        if not isinstance(value, str):
            raise _wrong_type(f"{at}.{kind}", "a string", value)
        texts.append(value)
    return "\n".join(texts)


def _check_stream(body: dict[str, Any]) -> None:
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _wrong_type("stream", "a boolean", stream)
    if stream:
        raise _bad(
            "stream: true is not supported by the fake chat model: it answers one JSON body, not "
            "server-sent events. Send stream false.",
            "stream",
            "unsupported_value",
        )
    if body.get("stream_options") is not None:
        raise _bad("The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options", None)


def _check_stop(stop: Any) -> None:
    if stop is None or isinstance(stop, str):
        return
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise _wrong_type("stop", "one of a string or array of strings", stop)
    if len(stop) > 4:
        raise _bad(
            f"Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array "
            f"with length {len(stop)} instead.",
            "stop",
            "array_above_max_length",
        )


def _check_response_format(fmt: Any, text: str) -> tuple[str, dict]:
    if fmt is None:
        return "text", {}
    if not isinstance(fmt, dict):
        raise _wrong_type("response_format", "an object", fmt)
    kind = fmt.get("type")
    if kind is None:
        raise _missing("response_format.type")
    if kind not in ("text", "json_object", "json_schema"):
        raise _bad(
            f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
            "response_format.type",
        )
    if kind == "json_object" and "json" not in text.lower():
        raise _bad(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            "messages",
            None,
        )
    if kind != "json_schema":
        return kind, {}
    spec = fmt.get("json_schema")
    if spec is None:
        raise _missing("response_format.json_schema")
    if not isinstance(spec, dict):
        raise _wrong_type("response_format.json_schema", "an object", spec)
    name = spec.get("name")
    if name is None:
        raise _missing("response_format.json_schema.name")
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name):
        raise _bad(
            f"Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string "
            f"that matches the pattern '^[a-zA-Z0-9_-]+$' (at most 64 characters), got {name!r}.",
            "response_format.json_schema.name",
            "invalid_value",
        )
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise _wrong_type("response_format.json_schema.schema", "an object", schema)
    return kind, schema


# ---- junk answers ----------------------------------------------------------------------------

#: malformed 200 answers: not JSON (an HTML page), JSON cut short, a list, nesting no parser takes, and
#: ``chat.completion`` objects without ``choices``, with an empty or non-list ``choices``, a choice that is no
#: object, a choice without ``message``, a ``content`` that is no string.
CHAT_JUNK_KINDS = (
    "not_json",
    "truncated_json",
    "not_object",
    "deep_json",
    "no_choices",
    "empty_choices",
    "choices_not_list",
    "choice_not_object",
    "no_message",
    "content_not_string",
)
#: hostile 200 streams: ``endless`` (a content string that never ends), ``drip`` (a valid answer one byte per
#: ``drip_interval``), ``big`` (a valid answer whose content is ``size`` characters, written as it goes).
CHAT_STREAM_KINDS = ("endless", "drip", "big")
_HTML_PAGE = "<!DOCTYPE html><html><head><title>502</title></head><body>Bad gateway</body></html>"


def junk(kind: str, plan: ChatPlan, rid: str, created: int) -> tuple[str, str]:
    """(body, content type) of a junk answer of ``kind``."""
    if kind == "not_json":
        return _HTML_PAGE, "text/html"
    if kind == "deep_json":
        return "[" * 100_000 + "]" * 100_000, "application/json"
    answer = completion(plan, rid, created, ChatReply(rewrite(plan)))
    if kind == "truncated_json":
        text = json.dumps(answer)
        return text[: len(text) // 2], "application/json"
    if kind == "not_object":
        return json.dumps([answer]), "application/json"
    choice = answer["choices"][0]
    if kind == "no_choices":
        del answer["choices"]
    elif kind == "empty_choices":
        answer["choices"] = []
    elif kind == "choices_not_list":
        answer["choices"] = choice
    elif kind == "choice_not_object":
        answer["choices"] = [rewrite(plan)]
    elif kind == "no_message":
        del choice["message"]
    elif kind == "content_not_string":
        choice["message"]["content"] = [{"type": "text", "text": rewrite(plan)}]
    return json.dumps(answer), "application/json"


def stream_pieces(kind: str, plan: ChatPlan, rid: str, created: int, size: int) -> tuple[bytes, Any]:
    """(head, pieces) of a hostile stream of ``kind``: the head written first, then each piece."""
    if kind == "drip":
        body = json.dumps(completion(plan, rid, created, ChatReply(rewrite(plan)))).encode()
        return b"", (body[i : i + 1] for i in range(len(body)))
    marker = "\x00"
    text = json.dumps(completion(plan, rid, created, ChatReply(marker))).encode()
    head, tail = text.split(b"\\u0000")
    chunk = b"a" * 65536
    if kind == "endless":
        return head, itertools.repeat(chunk)
    return head, itertools.chain(itertools.repeat(chunk, size // len(chunk)), [b"a" * (size % len(chunk)), tail])
