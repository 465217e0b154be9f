"""/models: the image models on offer, what each offers (shapes, resolutions, its own options, pictures to edit)
and what an image costs, in the user's language."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from ..imagemodels import Profile, profile_for
from ..keyboards import choice_label
from ..menus import Command
from ..options import ImageRequest
from ..services import Services, get_services
from ..texts import join_list, t
from .replies import origin_for, reply


async def models_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    services = get_services(context)
    origin = await origin_for(update, context)
    await reply(context, origin, models_text(services, origin.lang))


def models_text(services: Services, lang: str | None) -> str:
    offered = services.settings.offered
    if len(offered) == 1:
        return t("models_one", lang, label=profile_for(offered[0]).label)
    text = t("models_title", lang)
    for name in offered:
        profile = profile_for(name)
        extra = "".join(
            t(
                "models_option",
                lang,
                option=t(option.label_key, lang),
                choices=join_list([choice_label(option, c, lang) for c in option.choices], lang),
            )
            for option in profile.extra_options
        )
        text += t(
            "models_entry",
            lang,
            mark="✓ " if name == services.settings.default_model else "",
            label=profile.label,
            alias=profile.aliases[0] if profile.aliases else profile.name,
            ratios=join_list(profile.option("ratio").choices, lang),
            sizes=join_list(profile.option("size").choices, lang),
            extra=extra,
            refs=profile.max_references(),
            costs=costs_text(services, profile, lang),
        )
    return text + t("models_pick", lang)


def costs_text(services: Services, profile: Profile, lang: str | None) -> str:
    """Credits of one image per size (`1K 1 · 2K 1 · 4K 2`); with a model's own option, one figure per choice of
    its first (`1K 1/2/4 · … (Low/Medium/High)`)."""
    extra = profile.extra_options[0] if profile.extra_options else None
    parts = []
    for size in profile.option("size").choices:
        choices = extra.choices if extra else (None,)
        figures = [
            services.quota.cost(
                ImageRequest(
                    "",
                    model=profile.name,
                    options={"size": size, **({extra.name: c} if extra and c is not None else {})},
                )
            )
            for c in choices
        ]
        parts.append(f"{size} {'/'.join(map(str, figures))}")
    text = " · ".join(parts)
    if extra:
        text += f" ({'/'.join(choice_label(extra, c, lang) for c in extra.choices)})"
    return text


COMMANDS = [Command("models", models_command, private=9, group=8, several_models=True)]
HANDLERS: list = []
