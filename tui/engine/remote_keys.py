"""Where a server's API key comes from: the environment variable the settings name
(`api_key_env`, e.g. OPENAI_API_KEY), else config.toml's `[model] api_key` (read only from a file
that its owner alone can read), which the command line puts in CHATUI_API_KEY at start. The key
itself is never a setting: it stays out of conversations, exports and logs."""

from __future__ import annotations

import os

from tui.engine.settings import LoadSettings

KEY_FROM_CONFIG = "CHATUI_API_KEY"


def api_key(settings: LoadSettings) -> str | None:
    if settings.api_key_env:
        return os.environ.get(settings.api_key_env) or None
    return os.environ.get(KEY_FROM_CONFIG) or None
