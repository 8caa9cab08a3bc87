"""config.toml: validation, a broken file, atomic writes that keep other sections."""

import tomllib

from tui.engine.settings import GenerationSettings, LoadSettings
from tui.store.config import load_config, save_defaults, save_presets, save_theme


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_broken_toml_is_reported_with_its_line_and_left_alone(tmp_path):
    text = "[generation]\ntemperature = 0.5\ntop_p = = 3\n"
    path = write(tmp_path / "config.toml", text)
    config = load_config(path)
    assert "line 3" in config.errors[0]
    assert config.generation == {}  # starts on defaults
    import pytest

    from tui.store.config import ConfigError

    with pytest.raises(ConfigError, match="left as it is"):
        save_defaults(LoadSettings(), GenerationSettings(), "", None, path=path)
    assert path.read_text(encoding="utf-8") == text


def test_invalid_values_are_rejected_by_the_same_specs(tmp_path):
    path = write(
        tmp_path / "config.toml",
        """
[generation]
temperature = -1
top_k = 1.5
top_p = 0.5
[model]
dtype = "float8"
colour = "red"
compile = "yes"
[presets.bad]
temperature = "hot"
""",
    )
    config = load_config(path)
    assert config.generation == {"top_p": 0.5}
    joined = "\n".join(config.errors)
    for fragment in (
        "temperature: -1 is out of range",
        "top_k: expected a whole number",
        "dtype",
        "compile: 'yes' is not true or false",
        "unknown key 'colour'",
        "[presets.bad]",
    ):
        assert fragment in joined
    assert config.load == {}


def test_save_defaults_is_atomic_and_keeps_presets_and_keys(tmp_path):
    path = write(tmp_path / "config.toml", '[keys]\n"chat.new" = "ctrl+x"\n')
    save_presets({"mine": {"temperature": 0.3, "seed": None}}, path=path)
    save_defaults(
        LoadSettings(dtype="bfloat16"),
        GenerationSettings().with_updates({"top_k": 5}),
        "Be kind.",
        "chatui-forest",
        path=path,
    )
    save_theme("chatui-ember", path=path)
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert data["keys"] == {"chat.new": "ctrl+x"}
    assert data["presets"] == {"mine": {"temperature": 0.3}}
    assert data["model"]["dtype"] == "bfloat16" and data["generation"]["top_k"] == 5
    assert data["system_prompt"] == "Be kind." and data["theme"] == "chatui-ember"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temp files left
    reloaded = load_config(path)
    assert reloaded.errors == [] and reloaded.keys == {"chat.new": "ctrl+x"}


def test_an_api_key_is_used_only_from_a_private_file_and_kept_by_save_defaults(tmp_path):
    import os

    path = write(tmp_path / "config.toml", '[model]\nendpoint = "http://127.0.0.1:8000"\napi_key = "sk-in-config"\n')
    os.chmod(path, 0o644)
    config = load_config(path)
    assert config.api_key is None and any("chmod 600" in error for error in config.errors)
    os.chmod(path, 0o600)
    config = load_config(path)
    assert config.api_key == "sk-in-config" and config.errors == []
    assert "sk-in-config" not in repr(config) and "sk-in-config" not in repr(config.load_settings({}))
    save_defaults(LoadSettings(endpoint="http://127.0.0.1:8000"), GenerationSettings(), "", None, path=path)
    assert load_config(path).api_key == "sk-in-config"  # saving defaults does not drop the key
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_models_paths_list_extra_models_for_the_picker(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[models]\npaths = ["~/models/a", "/x/b.gguf"]\n')
    assert load_config(path).model_paths == ["~/models/a", "/x/b.gguf"]
    path.write_text('[models]\npaths = "~/models/a"\n')
    config = load_config(path)
    assert config.model_paths == [] and config.errors == [f"{path}: [models] paths must be a list of strings"]
