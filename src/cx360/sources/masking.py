"""`[privacy] mask_text`: the free-text fields of a source masked in each chunk as it is read, before
validation, so that neither the loaded rows nor the quarantined ones keep what the text revealed
(see cx360.privacy.textmask). A field is masked where the mapping names it (`properties = { text =
"summary" }`) and inside a JSON column of properties or attributes (`properties_json`, as the Segment
preset and the collector map them), by its key. A line that cannot be parsed at all goes to quarantine
as it was read."""

from __future__ import annotations

import json
from collections.abc import Callable

import pyarrow as pa

from cx360.config import Config
from cx360.privacy.textmask import mask_many
from cx360.sources.readers import Chunk


def chunk_masker(config: Config, source) -> Callable[[Chunk], Chunk] | None:
    """A function masking the chunk's free-text columns; None when the workspace masks nothing here."""
    settings = config.privacy
    if not settings.mask_text:
        return None
    wanted = set(settings.mask_fields)
    columns: set[str] = set()
    json_columns: set[str] = set()
    for _, mapping in source.targets():
        named = getattr(mapping, "properties", None) or getattr(mapping, "attributes", None) or {}
        columns |= {spec.column for name, spec in named.items() if name in wanted and spec.column}
        for field in ("properties_json", "extra_json"):
            if getattr(mapping, field, None):
                json_columns.add(getattr(mapping, field))
    if not columns and not json_columns:
        return None
    region = config.workspace.default_region

    def mask(chunk: Chunk) -> Chunk:
        data = chunk.data
        for name in sorted(columns | json_columns):
            if name not in data.column_names:
                continue
            i = data.column_names.index(name)
            column = data.column(i)
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                continue  # a number or a date holds no free text
            values = column.to_pylist()
            masked = _in_json(values, wanted, region) if name in json_columns else mask_many(values, region=region)
            data = data.set_column(i, name, pa.array(masked, column.type))
        return Chunk(data, chunk.malformed)

    return mask


def _in_json(values: list[str | None], keys: set[str], region: str | None) -> list[str | None]:
    """JSON objects with the string values of `keys` masked (top-level keys; the rest kept as it was)."""
    objects: list[dict | None] = []
    texts: list[str] = []
    for v in values:
        try:
            obj = json.loads(v) if v else None
        except ValueError:
            obj = None  # not JSON: validation quarantines or keeps it as ever
        objects.append(obj if isinstance(obj, dict) and keys & obj.keys() else None)
        if objects[-1] is not None:
            texts += [obj[k] for k in keys & obj.keys() if isinstance(obj[k], str)]
    masked = dict(zip(texts, mask_many(texts, region=region), strict=True))
    out = []
    for v, obj in zip(values, objects, strict=True):
        if obj is None:
            out.append(v)
            continue
        obj = {k: masked.get(x, x) if k in keys and isinstance(x, str) else x for k, x in obj.items()}
        out.append(json.dumps(obj, ensure_ascii=False, sort_keys=True))
    return out
