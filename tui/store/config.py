"""config.toml in the platformdirs config dir: read with tomllib, written with tomli-w.

Precedence: built-in defaults < config.toml < command-line flags < live changes. Only "Save as
defaults" and saving a preset write the file, atomically; a file that does not parse is never
overwritten. Values pass the same specs as flags and `/set`.

    theme = "chatui-dusk"
    system_prompt = ""
    [model]        # model, dtype, device, quantization, attn_implementation
    [generation]   # any generation setting, e.g. temperature = 0.7
    [presets.NAME] # a user preset: generation settings
    [keys]         # binding id = key, e.g. "chat.new" = "ctrl+t"
    [models]       # paths = ["~/models/Qwen3-0.6B", "~/gguf/x.gguf"]: more models for the picker
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from tui.engine.settings import (
    LOAD_FIELDS,
    GenerationSettings,
    LoadSettings,
    SettingsError,
    parse_updates,
)
from tui.paths import config_dir
from tui.store.files import write_file_atomic


class ConfigError(Exception):
    pass


@dataclass
class Config:
    path: Path
    load: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    theme: str | None = None
    system_prompt: str | None = None
    errors: list[str] = field(default_factory=list)  # what was wrong, for the user
    api_key: str | None = field(default=None, repr=False)  # [model] api_key: a server's key, never in settings
    mcp: dict[str, Any] = field(default_factory=dict, repr=False)  # [mcp]: read by tui.tools.servers
    model_paths: list[str] = field(default_factory=list)  # [models] paths: folders and .gguf files

    def load_settings(self, overrides: dict[str, Any]) -> LoadSettings:
        return LoadSettings(**{**self.load, **overrides})

    def generation_settings(self, overrides: dict[str, Any], base: dict[str, Any] | None = None) -> GenerationSettings:
        """chatui's defaults < `base` (a --generation-config file) < config.toml < `overrides`."""
        return GenerationSettings().with_updates(base or {}).with_updates(self.generation).with_updates(overrides)


def config_path() -> Path:
    return config_dir() / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """Read config.toml; problems are collected in `errors` (the app starts on defaults)."""
    path = path or config_path()
    config = Config(path=path)
    if not path.exists():
        return config
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        config.errors.append(f"{path}: {exc}; using defaults (the file is left as it is)")
        return config
    except OSError as exc:
        config.errors.append(f"{path}: cannot read it: {exc.strerror or exc}")
        return config

    def table(name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            config.errors.append(f"{path}: [{name}] must be a table")
            return {}
        return value

    model = table("model")
    for key, value in model.items():
        if key == "api_key":
            config.api_key = _private_key(path, value, config.errors)
            continue
        if key not in LOAD_FIELDS:
            config.errors.append(f"{path}: [model] unknown key {key!r}")
            continue
        try:
            LoadSettings(**{key: value})
        except (SettingsError, TypeError) as exc:
            config.errors.append(f"{path}: [model] {exc}")
            continue
        config.load[key] = value
    for key, value in table("generation").items():
        try:
            config.generation.update(parse_updates({key: value}))
        except SettingsError as exc:
            config.errors.append(f"{path}: [generation] {exc}")
    for name, values in table("presets").items():
        try:
            if not isinstance(values, dict):
                raise SettingsError("must be a table of generation settings")
            config.presets[name] = parse_updates(values)
        except SettingsError as exc:
            config.errors.append(f"{path}: [presets.{name}] {exc}")
    config.mcp = table("mcp")
    paths = table("models").get("paths", [])
    if isinstance(paths, list) and all(isinstance(p, str) for p in paths):
        config.model_paths = list(paths)
    else:
        config.errors.append(f"{path}: [models] paths must be a list of strings")
    for key, value in table("keys").items():
        if isinstance(value, str):
            config.keys[key] = value
        else:
            config.errors.append(f"{path}: [keys] {key} must be a string")
    for key in ("theme", "system_prompt"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            config.errors.append(f"{path}: {key} must be a string")
        elif value is not None:
            setattr(config, key, value)
    return config


def _private_key(path: Path, value: Any, errors: list[str]) -> str | None:
    """config.toml's API key, if the file is readable by its owner only (0600)."""
    if not isinstance(value, str) or not value:
        errors.append(f"{path}: [model] api_key must be a string")
        return None
    try:
        mode = path.stat().st_mode & 0o077
    except OSError:
        mode = 0
    if mode:
        errors.append(
            f"{path}: holds an API key but others can read it; the key is not used until you run chmod 600 {path}"
        )
        return None
    return value


def _raw(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} has an error ({exc}); fix it before saving, it was left as it is") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


def _write(path: Path, data: dict[str, Any]) -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_file_atomic(path, tomli_w.dumps(data))
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}  # TOML has no null


def save_defaults(
    load: LoadSettings, generation: GenerationSettings, system_prompt: str, theme: str | None, path: Path | None = None
) -> Path:
    path = path or config_path()
    data = _raw(path)
    key = data.get("model", {}).get("api_key") if isinstance(data.get("model"), dict) else None
    data["model"] = _clean({k: getattr(load, k) for k in LOAD_FIELDS})
    if key is not None:
        data["model"]["api_key"] = key  # the user's, kept where it was (the file stays 0600)
    data["generation"] = _clean(generation.as_dict())
    data["system_prompt"] = system_prompt
    if theme:
        data["theme"] = theme
    return _write(path, data)


def save_presets(presets: dict[str, dict[str, Any]], path: Path | None = None) -> Path:
    path = path or config_path()
    data = _raw(path)
    data["presets"] = {name: _clean(values) for name, values in presets.items()}
    return _write(path, data)


def save_theme(theme: str, path: Path | None = None) -> Path:
    path = path or config_path()
    data = _raw(path)
    data["theme"] = theme
    return _write(path, data)
