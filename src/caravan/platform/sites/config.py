"""The ``config.json`` a site's page reads at start-up: where its API is and which version runs.

The seed's contract (seed-system.md §7): ``{"apiBaseurl": "<base URL ending in '/' or ''>",
"version": "..."}``. caravan writes the commit id as ``version`` (the seed wrote a timestamp,
§12 item 16) and adds the pipeline's ``executionId``; the page polls ``version`` and reloads on a
change, so the file is served ``Cache-Control: no-cache, no-store, must-revalidate`` and is part
of the same atomic publish as the files it describes (§12 item 15: it used to be uploaded last,
with the wrong content type).

``site_config`` builds the usual keys; ``SiteStore.publish(config=...)`` accepts any JSON object,
whose keys the caller chooses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from caravan.errors import InvalidInputError

CONFIG_NAME = "config.json"
CONFIG_CONTENT_TYPE = "application/json"
CONFIG_CACHE_CONTROL = "no-cache, no-store, must-revalidate"


def site_config(
    api_base_url: str,
    version: str,
    execution_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """``{"apiBaseurl", "version", "executionId", **extra}``; a non-empty base ends in ``/``."""
    if api_base_url and not api_base_url.endswith("/"):
        api_base_url += "/"  # the page appends "data", "increment?..." to it
    config: dict[str, Any] = {"apiBaseurl": api_base_url, "version": version}
    if execution_id is not None:
        config["executionId"] = execution_id
    config.update(extra)
    return config


def encode_config(config: Mapping[str, Any]) -> bytes:
    """The file's bytes; ``InvalidInputError`` if ``config`` is not a JSON object."""
    if not isinstance(config, Mapping):
        raise InvalidInputError(f"site config must be a JSON object, not {type(config).__name__}")
    bad = [key for key in config if not isinstance(key, str)]
    if bad:
        raise InvalidInputError(f"site config keys must be strings: {bad!r}")
    try:
        text = json.dumps(dict(config), indent=2, sort_keys=True, allow_nan=False, default=_refuse)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"site config is not JSON: {exc}") from None
    return (text + "\n").encode("utf-8")


def _refuse(value: object) -> object:
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON")
