"""Event conditions: the condition language over one event of `profile_events`.

A step or a filter names the event's columns (`name`, `channel`, `amount`, `source`, `ts`), a property
as `properties.KEY`, or a property by its bare name when a source of the workspace maps it (the web
source's `path`, the app's `screen`). Anything else is an error that lists what is known, so that a
typo never yields an empty funnel.
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis.expr.types as ir

from cx360.conditions import Condition, compile_condition, parse
from cx360.config import Config
from cx360.engine import Engine
from cx360.errors import ConfigError

EVENT_COLUMNS = ("name", "channel", "amount", "source", "ts")


def mapped_properties(config: Config) -> set[str]:
    """The property keys some source of the workspace maps by name."""
    return {key for s in config.sources if s.events is not None for key in s.events.properties}


class EventFields:
    """Resolves the fields of event conditions to columns of an events table."""

    def __init__(self, engine: Engine, properties: Iterable[str] = ()):
        self.engine = engine
        self.properties = set(properties) - set(EVENT_COLUMNS)

    def check(self, cond: Condition, where: str) -> None:
        unknown = [f for f in cond.fields if not f.startswith("properties.") and f not in EVENT_COLUMNS]
        unknown = [f for f in unknown if f not in self.properties]
        if unknown:
            known = ", ".join([*EVENT_COLUMNS, *sorted(self.properties), "properties.KEY"])
            raise ConfigError(
                f"{where}: unknown event field(s) {', '.join(map(repr, unknown))} in {cond.text!r}; known: {known}"
            )

    def condition(self, t: ir.Table, text: str, where: str) -> ir.BooleanValue:
        """The condition as a boolean over the events table `t`, after checking its fields."""
        cond = parse(text)
        self.check(cond, where)

        def resolve(field: str) -> ir.Value:
            if field in EVENT_COLUMNS:
                return t[field]
            return self.engine.json_get(t.properties, field.removeprefix("properties."))

        return compile_condition(cond, resolve)
