"""Read one 3D profile from the warehouse, for `cx360 profile show` and `Workspace.profile()`
(the API reads the same `Profile` from its serving index: cx360.api.store)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cx360.profiles.view import Profile, assemble

if TYPE_CHECKING:
    from cx360.workspace import Workspace


def read(ws: Workspace, key: str) -> Profile:
    """The profile behind a profile id or any identifier (e-mail, phone, customer number, card token,
    cookie, device, social handle, `record:SOURCE:ID`)."""
    from cx360.identity.explain import find_profile

    engine = ws.engine
    pid = find_profile(ws, key)

    def rows(table: str, order: list[str] | None = None) -> list[dict[str, Any]]:
        if not engine.has_table(table):
            return []
        t = engine.table(table)
        expr = t.filter(t.profile_id == pid)
        return engine.to_arrow(expr.order_by(order) if order else expr, step=f"profile: {table}").to_pylist()

    def one(table: str) -> dict[str, Any] | None:
        found = rows(table)
        return found[0] if found else None

    return assemble(
        pid,
        one("profiles"),
        traits=one("profile_traits"),
        breakdowns=[(r["breakdown"], r["key"], r["value"]) for r in rows("profile_breakdowns", ["breakdown", "key"])],
        scores=one("profile_scores"),
        churn=one("churn_scores"),
        segments=rows("segment_members", ["segment"]),
        archetype=one("profile_archetypes"),
    )
