"""Where a server's API key comes from: the environment variable the settings name
(`api_key_env`, e.g. OPENAI_API_KEY), else config.toml's `[model] api_key` (read only from a file
that its owner alone can read), which the command line puts in CHATUI_API_KEY at start. The key
itself is never a setting: it stays out of conversations, exports and logs.

config.toml's key goes only to the endpoint chatui started with (config.toml's or `--endpoint`,
in CHATUI_API_KEY_ENDPOINT): a conversation file that names another server never receives it."""

from __future__ import annotations

import os

from tui.engine.settings import LoadSettings

KEY_FROM_CONFIG = "CHATUI_API_KEY"
KEY_ENDPOINT = "CHATUI_API_KEY_ENDPOINT"  # the one endpoint config.toml's key is for


def _same_server(a: str, b: str) -> bool:
    return a.strip().rstrip("/").removesuffix("/v1") == b.strip().rstrip("/").removesuffix("/v1")


def api_key(settings: LoadSettings) -> str | None:
    if settings.api_key_env:
        return os.environ.get(settings.api_key_env) or None
    key = os.environ.get(KEY_FROM_CONFIG) or None
    trusted = os.environ.get(KEY_ENDPOINT)
    if key and trusted is not None and not _same_server(trusted, settings.endpoint or ""):
        return None
    return key
