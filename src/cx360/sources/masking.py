"""`[privacy] mask_text`: the free-text fields of a source masked in each chunk as it is read, before
validation, so that neither the loaded rows nor the quarantined ones keep what the text revealed
(see cx360.privacy.textmask). A line that cannot be parsed at all goes to quarantine as it was read."""

from __future__ import annotations

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
    columns = sorted(
        {
            spec.column
            for _, mapping in source.targets()
            for name, spec in (
                getattr(mapping, "properties", None) or getattr(mapping, "attributes", None) or {}
            ).items()
            if name in settings.mask_fields and spec.column
        }
    )
    if not columns:
        return None
    region = config.workspace.default_region

    def mask(chunk: Chunk) -> Chunk:
        data = chunk.data
        for name in columns:
            if name not in data.column_names:
                continue
            i = data.column_names.index(name)
            column = data.column(i)
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                continue  # a number or a date holds no free text
            data = data.set_column(i, name, pa.array(mask_many(column.to_pylist(), region=region), column.type))
        return Chunk(data, chunk.malformed)

    return mask
