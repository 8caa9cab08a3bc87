"""Any GenerationConfig field as a setting: typed as `transformers chat` types `key=value`, named
with "did you mean", checked by transformers' own validation."""

from __future__ import annotations

import json

import pytest

from tui.engine.generation_config import load_file, parse_flag_value, settings_of
from tui.engine.settings import GenerationSettings, SettingsError, parse_key_values


@pytest.mark.parametrize(
    "raw, value",
    [
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("None", None),
        ("null", None),
        ("20", 20),
        ("-3", -3),
        ("0.5", 0.5),
        ("-0.25", -0.25),
        ("1e-3", 0.001),
        ("[1,2]", [1, 2]),
        ('["###", "END"]', ["###", "END"]),
        ("###", "###"),
        ("hello world", "hello world"),
    ],
)
def test_values_are_typed_as_transformers_chat_types_them(raw, value):
    assert parse_flag_value(raw) == value and type(parse_flag_value(raw)) is type(value)


def test_none_for_a_form_setting_means_its_default_as_in_transformers():
    settings = GenerationSettings().with_updates(parse_key_values(["temperature=0.2", "top_k=5"]))
    settings = settings.with_updates(parse_key_values(["temperature=None", "top_k=none"]))
    assert settings.temperature == 0.7 and settings.top_k == 50 and settings.changed() == {}


def test_token_id_lists_are_checked_before_any_generation():
    with pytest.raises(SettingsError, match="bad_words_ids: expected a list of token id lists"):
        GenerationSettings().with_updates(parse_key_values(["bad_words_ids=[1,2]"]))
    assert GenerationSettings().with_updates(parse_key_values(["bad_words_ids=[[1,2],[3]]"])).bad_words_ids == [
        [1, 2],
        [3],
    ]


def test_any_generation_config_field_is_taken():
    updates = parse_key_values(
        [
            "min_new_tokens=20",
            "num_beams=2",
            "eos_token_id=[2,3]",
            "stop_strings=###",
            "length_penalty=-0.5",
            "do_sample=False",
        ]
    )
    settings = GenerationSettings().with_updates(updates)
    kwargs = settings.generate_kwargs()
    assert kwargs["min_new_tokens"] == 20 and kwargs["num_beams"] == 2 and kwargs["eos_token_id"] == [2, 3]
    assert kwargs["stop_strings"] == "###" and kwargs["length_penalty"] == -0.5 and not settings.streams
    assert settings.changed() == {
        "do_sample": False,
        "min_new_tokens": 20,
        "num_beams": 2,
        "eos_token_id": [2, 3],
        "stop_strings": "###",
        "length_penalty": -0.5,
    }
    assert "min_new_tokens" not in settings.without("min_new_tokens").values
    assert settings.without("do_sample").values["do_sample"] is True  # a spec's own default


@pytest.mark.parametrize(
    "words, message",
    [
        (["temprature=0.5"], "unknown setting 'temprature'; did you mean temperature?"),
        (["num_beam=2"], "did you mean num_beams?"),
        (["num_beams=0"], "num_beams: expected a whole number ≥ 1"),
        (["early_stopping=sometimes", "num_beams=2"], "early_stopping:"),
        (["return_dict_in_generate=true"], "return_dict_in_generate: chatui sets this itself"),
        (["eos_token_id=[1,"], "eos_token_id:"),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(words, message):
    with pytest.raises(SettingsError) as raised:
        GenerationSettings().with_updates(parse_key_values(words))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_generation_config_file_or_folder_gives_its_settings(tmp_path):
    (tmp_path / "generation_config.json").write_text(
        json.dumps(
            {
                "temperature": 0.6,
                "top_p": 0.95,
                "num_beams": 1,
                "repetition_penalty": 1.1,
                "transformers_version": "5.0",
            }
        )
    )
    assert (
        load_file(str(tmp_path))
        == load_file(str(tmp_path / "generation_config.json"))
        == {"temperature": 0.6, "top_p": 0.95, "repetition_penalty": 1.1}
    )  # defaults and chatui's own keys left out
    with pytest.raises(ValueError, match="--generation-config"):
        load_file(str(tmp_path / "missing.json"))


def test_a_generation_config_file_keeps_chatuis_settings_it_sets_to_transformers_defaults(tmp_path):
    """temperature=1.0 and do_sample=false are transformers' defaults but not chatui's (0.7, true):
    a file that sets them must get them, as it does in `transformers chat`."""
    from tui.cli.main import parse_args

    path = tmp_path / "greedy.json"
    path.write_text(json.dumps({"max_new_tokens": 5, "do_sample": False, "temperature": 1.0, "top_p": 1.0}))
    options = parse_args(["--generation-config", str(path)])
    assert (options.generation.do_sample, options.generation.temperature, options.generation.top_p) == (False, 1.0, 1.0)
    assert options.generation.max_new_tokens == 5
    assert options.generation.top_k == 50 and options.generation.repetition_penalty == 1.0  # not in the file: chatui's


def test_a_saved_transformers_chat_config_keeps_what_it_changed():
    from transformers import GenerationConfig

    config = GenerationConfig(do_sample=True, max_new_tokens=256, num_beams=3, eos_token_id=[1, 2]).to_dict()
    assert settings_of(config) == {"do_sample": True, "max_new_tokens": 256, "num_beams": 3, "eos_token_id": [1, 2]}
