"""The image models the bot knows, one module each. Adding a model is adding its module and naming it here
(docs/ADDING-A-MODEL.md); IMAGE_MODELS chooses which of them a bot offers."""

from __future__ import annotations

from . import gemini_3_pro_image, gpt_image_2, nano_banana_2, seedream_4_5
from .profile import RATIOS, TIERS, Option, Profile, References

__all__ = [
    "DEFAULT_MODEL",
    "PROFILES",
    "RATIOS",
    "TIERS",
    "Option",
    "Profile",
    "References",
    "UnknownModel",
    "find_profile",
    "profile_for",
]

#: profile name → profile, in the order `--help` and `/models` list them.
PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (nano_banana_2.PROFILE, gemini_3_pro_image.PROFILE, gpt_image_2.PROFILE, seedream_4_5.PROFILE)
}
DEFAULT_MODEL = nano_banana_2.PROFILE.name


def check_names(profiles: dict[str, Profile]) -> None:
    """Every name and alias names one profile only (`--model pro` must not be a guess)."""
    seen: dict[str, str] = {}
    for profile in profiles.values():
        for name in (profile.name, *profile.aliases):
            if seen.setdefault(name, profile.name) != profile.name:
                raise ValueError(f"{name!r} names both {seen[name]} and {profile.name}")


check_names(PROFILES)


class UnknownModel(LookupError):
    """A model name (or alias) no profile has; `known` lists what would have been accepted."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown model {name!r}; known: {', '.join(known)}")
        self.name, self.known = name, known


def profile_for(name: str) -> Profile:
    """The profile named `name` exactly (what settings and stored requests hold)."""
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownModel(name, list(PROFILES)) from None


def find_profile(text: str, among: list[str] | None = None) -> Profile:
    """The profile a user's `--model` names: its name or an alias, any case; only `among` (the names on offer)
    when given. UnknownModel names those on offer."""
    names = list(PROFILES) if among is None else among
    wanted = text.strip().lower()
    for name in names:
        profile = profile_for(name)
        if wanted == profile.name or wanted in profile.aliases:
            return profile
    raise UnknownModel(text, names)
