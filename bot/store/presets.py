"""Presets: a chat's (a group's, its admins' to change) or a person's own styles, shared by every process."""

from __future__ import annotations

import json
import time
from types import MappingProxyType

import sqlalchemy as sa

from ..styles import MAX_PRESETS, Style
from .backend import Repository
from .schema import presets


class TooManyPresets(Exception):
    """A chat or a person has MAX_PRESETS already; a new one would be one more."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} presets")
        self.limit = limit


class Presets(Repository):
    """One row per preset: (scope, scope id, name), names case folded."""

    async def list_presets(self, scope: str, scope_id: int) -> list[Style]:
        rows = await self._db.all(_LIST, {"b_scope": scope, "b_id": scope_id})
        return [_style(row) for row in rows]

    async def save_preset(self, scope: str, scope_id: int, style: Style, by: int, limit: int = MAX_PRESETS) -> bool:
        """Add it, or change the one of the same name; True when it is new. TooManyPresets when a new one would
        pass `limit` (counted and written in one transaction that holds the owner's lock, so two adds at once,
        from any processes, never pass it)."""
        row = {
            "scope": scope,
            "scope_id": scope_id,
            "name": style.name.casefold(),
            "template": style.template,
            "options": json.dumps(dict(style.options)),
            "pictures": json.dumps(list(style.pictures)),
            "created_by": by,
            "updated_at": time.time(),
        }
        statement = self._db.insert(presets).values(**row)
        upsert = statement.on_conflict_do_update(
            index_elements=["scope", "scope_id", "name"],
            set_={k: statement.excluded[k] for k in row if k not in ("scope", "scope_id", "name")},
        )
        params = {"b_scope": scope, "b_id": scope_id, "b_name": row["name"]}

        def work(conn: sa.Connection) -> bool:
            self._db.lock_owner(conn, f"presets:{scope}:{scope_id}")
            names = {r[0] for r in conn.execute(_NAMES, params)}
            new = row["name"] not in names
            if new and len(names) >= limit:
                raise TooManyPresets(limit)
            conn.execute(upsert)
            return new

        return await self._db.write(work)

    async def delete_preset(self, scope: str, scope_id: int, name: str) -> bool:
        count = await self._db.run(
            sa.delete(presets).where(
                presets.c.scope == scope, presets.c.scope_id == scope_id, presets.c.name == name.casefold()
            )
        )
        return count > 0


_LIST = (
    sa.select(presets)
    .where(presets.c.scope == sa.bindparam("b_scope"), presets.c.scope_id == sa.bindparam("b_id"))
    .order_by(presets.c.name)
)
_NAMES = sa.select(presets.c.name).where(
    presets.c.scope == sa.bindparam("b_scope"), presets.c.scope_id == sa.bindparam("b_id")
)


def _style(row: sa.Row) -> Style:
    m = row._mapping
    return Style(
        m["name"],
        m["template"],
        options=MappingProxyType(json.loads(m["options"] or "{}")),
        pictures=tuple(json.loads(m["pictures"] or "[]")),
        owner=m["scope"],
    )
