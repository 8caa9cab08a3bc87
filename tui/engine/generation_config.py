"""Any `GenerationConfig` field as a setting, typed and checked as `transformers chat` does.

chatui's own specs (tui.engine.settings.PARAM_SPECS) cover the settings of the sidebar's form,
with ranges and chat-friendly defaults; every other field of transformers' GenerationConfig
(`min_new_tokens`, `num_beams`, `eos_token_id`, `stop_strings`, ...) is accepted too, by name,
and checked by transformers' own validation. transformers is imported here only when such a
field is used (the first frame never waits for it).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from tui.engine.sources import one_line
from tui.logs import quiet_transformers


class GenerationConfigError(ValueError):
    """A setting transformers refuses; the message names the key (tui.engine.settings re-raises it
    as a SettingsError)."""


# Fields chatui sets itself, each with the reason, so that a user who sets one hears why not.
MANAGED: dict[str, str] = {
    "return_dict_in_generate": "chatui reads the whole output of generate itself",
    "num_return_sequences": "chatui writes one reply at a time",
    "use_cache": "chatui keeps the KV cache across turns",
    "cache_implementation": "chatui manages the KV cache (--compile gives a static one)",
    "cache_config": "chatui manages the KV cache",
    "compile_config": "use --compile (or the sidebar's torch.compile switch)",
    "transformers_version": "it records which transformers wrote a saved config",
    "pad_token_id": "chatui takes it from the tokenizer",
}
_NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def parse_flag_value(raw: str) -> Any:
    """A `key=value` word's value, typed as `transformers chat` types it: true/false in any case,
    None (or null), ints and floats (negatives too), JSON lists such as [1,2] or ["###"], else
    the string itself."""
    text = raw.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text in ("None", "none", "null"):
        return None
    if _NUMBER.fullmatch(text):
        value = float(text)
        return int(text) if re.fullmatch(r"-?\d+", text) else value
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            raise GenerationConfigError(f'{text!r} is not a list (write it as JSON, e.g. [1,2] or ["###"])') from None
        return value
    return raw


def check_json_value(key: str, value: Any) -> Any:
    """A value from a file (TOML, JSON) for a field: only what `key=value` could say."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise GenerationConfigError(f"{key}: must be a finite number, got {value!r}")
        return value
    if isinstance(value, list) and all(isinstance(item, (int, str)) and not isinstance(item, bool) for item in value):
        return value
    if isinstance(value, list) and all(isinstance(item, list) for item in value):  # e.g. bad_words_ids
        return value
    raise GenerationConfigError(f"{key}: expected a number, true/false, a string or a list, got {value!r}")


@cache
def field_names() -> frozenset[str]:
    """The fields of transformers' GenerationConfig (imports transformers the first time)."""
    from transformers import GenerationConfig

    quiet_transformers()
    return frozenset(name for name in GenerationConfig().to_dict() if not name.startswith("_"))


def check_name(key: str, also_known: Iterable[str] = ()) -> None:
    """Refuse a key that is not a GenerationConfig field (with "did you mean"), or one chatui sets."""
    if key in MANAGED:
        raise GenerationConfigError(f"{key}: chatui sets this itself ({MANAGED[key]})")
    known = field_names() | set(also_known)
    if key not in known:
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]}?" if close else " (a GenerationConfig field name is expected)"
        raise GenerationConfigError(f"unknown setting {key!r}{hint}")


# Bounds transformers checks only when generate runs (a failed reply), checked here up front.
# Fields whose shape transformers checks only when generate builds its processors.
_LISTS_OF_TOKEN_LISTS = ("bad_words_ids", "force_words_ids")
_AT_LEAST = {"num_beams": 1, "num_beam_groups": 1, "min_new_tokens": 0, "min_length": 0, "max_length": 1}


def validate(values: dict[str, Any]) -> None:
    """Check a whole set of values with transformers' own GenerationConfig validation; the error
    names the key it is about."""
    from transformers import GenerationConfig

    for key, least in _AT_LEAST.items():
        value = values.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < least):
            raise GenerationConfigError(f"{key}: expected a whole number ≥ {least}, got {value!r}")
    for key in _LISTS_OF_TOKEN_LISTS:
        value = values.get(key)
        if value is not None and not _token_id_lists(value):
            raise GenerationConfigError(f"{key}: expected a list of token id lists, e.g. [[1,2],[3]], got {value!r}")
    try:
        GenerationConfig(**values).validate(strict=False, user_set_attributes=set(values))
    except (ValueError, TypeError) as exc:
        raise GenerationConfigError(f"{_key_of(exc, values)}: {one_line(exc)}") from None


def _token_id_lists(value: Any) -> bool:
    def token_ids(ids: Any) -> bool:
        return (
            isinstance(ids, list)
            and bool(ids)
            and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ids)
        )

    return isinstance(value, list) and bool(value) and all(token_ids(ids) for ids in value)


def _key_of(exc: BaseException, values: dict[str, Any]) -> str:
    mentioned = [name for name in re.findall(r"`(\w+)`", str(exc)) if name in values]
    return mentioned[0] if mentioned else ", ".join(sorted(values))


def settings_of(config: dict[str, Any], keep: Iterable[str] = ()) -> dict[str, Any]:
    """The settings a GenerationConfig dict (a saved `transformers chat` config, a
    generation_config.json) sets apart from GenerationConfig's defaults, minus chatui's own. Keys
    in `keep` are kept even at transformers' default (chatui's defaults differ from it)."""
    keep = set(keep)
    from transformers import GenerationConfig

    defaults = GenerationConfig().to_dict()
    # Unset fields are None; generate() then uses these (transformers 5 keeps them apart).
    effective: dict[str, Any] = getattr(GenerationConfig, "_get_default_generation_params", dict)()
    defaults.update((key, value) for key, value in effective.items() if defaults.get(key) is None)
    return {
        key: value
        for key, value in config.items()
        if value is not None
        and key in field_names()
        and key not in MANAGED
        and (key in keep or defaults.get(key) != value)
        and _storable(value)
    }


def _storable(value: Any) -> bool:
    try:
        check_json_value("", value)
    except GenerationConfigError:
        return False
    return True


def load_file(path: str, keep: Iterable[str] = ()) -> dict[str, Any]:
    """`--generation-config FILE_OR_DIR`: a generation_config.json (or a folder with one), as
    settings; raises GenerationConfigError with one line. Keys in `keep` (chatui's form settings,
    whose defaults are not transformers') count whenever the file sets them, even to
    transformers' default: temperature=1.0 in the file is not chatui's 0.7."""
    from transformers import GenerationConfig

    location = Path(path).expanduser()
    try:
        if location.is_file():
            config = GenerationConfig.from_pretrained(str(location.parent), location.name)
        elif location.is_dir():
            config = GenerationConfig.from_pretrained(str(location))
        else:
            raise GenerationConfigError(f"--generation-config: {path} is not a file or a folder")
    except GenerationConfigError:
        raise
    except Exception as exc:  # OSError, JSON errors, ...: one line
        raise GenerationConfigError(f"--generation-config {path}: {one_line(exc)}") from None
    return settings_of(config.to_dict(), keep=keep)


def config_dict(values: dict[str, Any]) -> dict[str, Any]:
    """A whole GenerationConfig dict for `values` (what `transformers chat` saves under
    settings.config)."""
    from transformers import GenerationConfig

    return GenerationConfig(**values).to_dict()
