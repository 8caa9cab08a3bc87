import math

import pytest

from tui.engine.settings import (
    PARAM_SPECS,
    GenerationSettings,
    LoadSettings,
    SettingsError,
    parse_key_values,
)


def test_defaults_come_from_the_spec_table():
    settings = GenerationSettings()
    assert settings.as_dict() == {spec.name: spec.default for spec in PARAM_SPECS}


def test_key_values_are_parsed_to_their_types():
    values = parse_key_values(["do_sample=false", "max_new_tokens=64", "temperature=0.7", "seed=none", "top-k=5"])
    assert values == {"do_sample": False, "max_new_tokens": 64, "temperature": 0.7, "seed": None, "top_k": 5}


@pytest.mark.parametrize(
    "item, fragment",
    [
        ("temperature=-1", "out of range"),
        ("top_p=2", "out of range"),
        ("top_k=1.5", "whole number"),
        ("max_new_tokens=0", "out of range"),
        ("temperature=nan", "finite"),
        ("temperature=inf", "finite"),
        ("temperature=1e400", "finite"),
        ("temperature=abc", "expected a number"),
        ("do_sample=maybe", "true or false"),
        ("bogus=1", "unknown setting"),
        ("novalue", "key=value"),
        ("=3", "key=value"),
    ],
)
def test_bad_values_are_rejected_with_a_reason(item, fragment):
    with pytest.raises(SettingsError, match=fragment):
        parse_key_values([item])


def test_with_updates_is_all_or_nothing():
    settings = GenerationSettings()
    with pytest.raises(SettingsError):
        settings.with_updates({"temperature": "0.5", "top_p": "7"})
    assert settings.temperature == 0.7  # unchanged


def test_config_values_must_have_the_right_type():
    settings = GenerationSettings()
    assert settings.with_updates({"top_k": 10.0}).top_k == 10
    for bad in ({"top_k": 1.5}, {"do_sample": 1}, {"temperature": True}, {"temperature": "x"}, {"top_k": math.inf}):
        with pytest.raises(SettingsError):
            settings.with_updates(bad)


def test_generate_kwargs_leave_out_sampling_knobs_when_greedy():
    greedy = GenerationSettings().with_updates({"do_sample": False}).generate_kwargs()
    assert "temperature" not in greedy and "top_p" not in greedy
    assert greedy["max_new_tokens"] == 512 and greedy["do_sample"] is False
    sampling = GenerationSettings().generate_kwargs()
    assert sampling["temperature"] == 0.7 and "min_p" not in sampling  # min_p 0 means off (None)
    assert "seed" not in sampling


def test_load_settings_validate_choices():
    assert LoadSettings(dtype="bfloat16").dtype == "bfloat16"
    with pytest.raises(SettingsError, match="dtype"):
        LoadSettings(dtype="float8")
    with pytest.raises(SettingsError, match="quantization"):
        LoadSettings(quantization="2bit")
