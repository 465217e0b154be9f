"""The command menu: per scope (private chats, groups) and language, and per chat where a language code can't reach.

Telegram picks a menu by a two-letter `language_code`, so Traditional Chinese (`zh-hant`, shared `zh` with
Simplified) gets its menu per private chat instead, set when such a user starts the bot or chooses it in /settings.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
)
from telegram.error import TelegramError

from .texts import LANGUAGES, language, t

log = logging.getLogger(__name__)

# what a language_code of two letters selects (the languages that have one to themselves)
BY_CODE = [code for code in LANGUAGES if len(code) == 2]


def commands(names: list[str], lang: str | None) -> list[BotCommand]:
    return [BotCommand(n, t(f"cmd_{n}", lang)) for n in names]


@dataclass(frozen=True, slots=True)
class Command:
    """A command, as its handler module exports it: what runs it, and its place in the menus (None: not listed)."""

    name: str
    callback: Callable[..., Coroutine[Any, Any, None]]
    private: int | None = None  # its place in the menu of private chats
    group: int | None = None  # and of groups
    several_models: bool = False  # listed only when several image models are offered (/models)


class Menu:
    """The command menus, built from the commands the handler modules export (each listed once, where it is)."""

    def __init__(self, commands: list[Command]) -> None:
        self.private = [
            c.name for c in sorted((c for c in commands if c.private is not None), key=lambda c: c.private or 0)
        ]
        self.group = [c.name for c in sorted((c for c in commands if c.group is not None), key=lambda c: c.group or 0)]

    def menus(self) -> list[tuple[list[BotCommand], BotCommandScope | None, str | None]]:
        """The menu per scope (private chats, groups) and language code; the default one is English."""
        menus: list[tuple[list[BotCommand], BotCommandScope | None, str | None]] = []
        for lang in [None, *BY_CODE]:
            for names, scope in (
                (self.private, None),
                (self.private, BotCommandScopeAllPrivateChats()),
                (self.group, BotCommandScopeAllGroupChats()),
            ):
                if lang is not None and scope is None:
                    continue
                menus.append((commands(names, lang), scope, lang))
        return menus

    async def set_private(self, bot: Bot, chat_id: int, lang: str | None, *, chosen: bool) -> None:
        """A private chat's own menu in `lang`, when the menus by language code would show another language:
        always after a choice in /settings (`chosen`), else only for a language without a code of its own."""
        if chat_id <= 0 or (not chosen and language(lang) in BY_CODE):
            return
        try:
            await bot.set_my_commands(commands(self.private, lang), scope=BotCommandScopeChat(chat_id))
        except TelegramError as exc:  # a menu in the wrong language is no reason to fail the command
            log.info("chat menu of %s not set: %s", chat_id, exc.message)

    async def reset_private(self, bot: Bot, chat_id: int, lang: str | None) -> None:
        """Back to the app's language: the chat's own menu goes, so the menus by language code apply again (a
        language without a code of its own gets its menu here once more)."""
        try:
            await bot.delete_my_commands(scope=BotCommandScopeChat(chat_id))
        except TelegramError as exc:
            log.info("chat menu of %s not removed: %s", chat_id, exc.message)
        await self.set_private(bot, chat_id, lang, chosen=False)
