"""Value formats: decoding helpers shared by sources (JSON via orjson)."""

from __future__ import annotations

from collections.abc import Iterable

import orjson


def json_columns(values: Iterable[bytes | None], limit: int = 50) -> list[str]:
    """Field names of the JSON objects among ``values``, in order of first appearance.

    Used to infer the columns of a topic without a declared schema; values that are not JSON
    objects are passed over.
    """
    seen: dict[str, None] = {}
    for i, value in enumerate(values):
        if i >= limit:
            break
        try:
            obj = orjson.loads(value) if value is not None else None
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            seen.update(dict.fromkeys(obj))
    return list(seen)
