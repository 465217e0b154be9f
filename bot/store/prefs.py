"""Remembered defaults of a user (private chats) or a chat (groups)."""

from __future__ import annotations

import json

import sqlalchemy as sa

from ..imagemodels import PROFILES
from ..models import Prefs
from ..options import AspectRatio, Resolution
from .backend import Repository
from .schema import prefs


class PrefsTable(Repository):
    """One row per scope (`user` or `chat`) and its id."""

    async def get_prefs(self, scope: str, scope_id: int) -> Prefs:
        row = await self._one(_PREFS, {"b_scope": scope, "b_id": scope_id})
        if row is None:
            return Prefs()
        m = row._mapping
        model, options = _choices(m["request"])
        ratio, size = m["aspect_ratio"], m["size"]  # every version writes these two
        return Prefs(
            AspectRatio(ratio) if ratio else None,
            Resolution(size) if size else None,
            bool(m["always_original"]),
            m["language"],
            m["variants"],
            model,
            options,
            bool(m["translate"]),
        )

    async def save_prefs(self, scope: str, scope_id: int, p: Prefs) -> None:
        row = {
            "scope": scope,
            "scope_id": scope_id,
            "aspect_ratio": p.aspect_ratio.value if p.aspect_ratio else None,
            "size": p.size.value if p.size else None,
            "always_original": int(p.always_original),
            "language": p.language,
            "variants": p.variants,
            "request": json.dumps({"model": p.model, "options": p.choices()}, separators=(",", ":")),
            "translate": int(p.translate),
        }
        statement = self._db.insert(prefs).values(**row)
        await self._db.run(
            statement.on_conflict_do_update(
                index_elements=["scope", "scope_id"],
                set_={k: statement.excluded[k] for k in row if k not in ("scope", "scope_id")},
            )
        )


def _choices(value: str | None) -> tuple[str | None, dict[str, str]]:
    """The remembered model (one this version knows) and the models' own options (ratio and size are columns)."""
    try:
        data = json.loads(value) if value else {}
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    options = data.get("options")
    options = (
        {str(k): str(v) for k, v in options.items() if k not in ("ratio", "size")} if isinstance(options, dict) else {}
    )
    model = data.get("model")
    return (model if model in PROFILES else None), options


_PREFS = sa.select(prefs).where(prefs.c.scope == sa.bindparam("b_scope"), prefs.c.scope_id == sa.bindparam("b_id"))
