import re
from pathlib import Path

import pytest
from processes import run_cli

from tui.cli.main import main, parse_args


def test_parse_model_flags_and_settings():
    options = parse_args(
        [
            "some/model",
            "do_sample=false",
            "max_new_tokens=64",
            "--dtype",
            "bfloat16",
            "--prompt",
            "hi",
            "temperature=0.5",
            "--stats",
        ]
    )
    assert options.load.model == "some/model" and options.load.dtype == "bfloat16"
    assert options.generation.do_sample is False and options.generation.max_new_tokens == 64
    assert options.generation.temperature == 0.5 and options.prompts == ["hi"] and options.stats
    assert options.generation_overrides == {"do_sample": False, "max_new_tokens": 64, "temperature": 0.5}
    assert options.load_overrides == {"model": "some/model", "dtype": "bfloat16"}


def test_speed_options_as_flags():
    options = parse_args(["--draft-model", "/models/tiny", "prompt_lookup_num_tokens=10", "--compile"])
    assert options.load.draft_model == "/models/tiny" and options.load.compile
    assert not parse_args([]).load.compile
    assert options.generation.generate_kwargs()["prompt_lookup_num_tokens"] == 10


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--bogus"], "unrecognized arguments"),
        (["temperature=-1", "--prompt", "x"], "temperature"),
        (["wat=1", "--prompt", "x"], "unknown setting"),
        (["temprature=0.5", "--prompt", "x"], "unknown setting 'temprature'; did you mean temperature?"),
        (["num_beams=0", "--prompt", "x"], "num_beams: expected a whole number ≥ 1"),
        (["--generation-config", "/no/such/dir", "--prompt", "x"], "--generation-config"),
        (["model", "stray", "--prompt", "x"], "unexpected argument"),
        (["--dtype", "float8"], "invalid choice"),
        (["--adapter", "tone=", "--prompt", "x"], "--adapter 'tone=': give a folder or Hub id"),
        (["--merge-adapter", "--prompt", "x"], "--merge-adapter merges the adapter --adapter loads"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_message(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_bad_model_path_exits_non_zero_without_traceback():
    result = run_cli("/no/such/model", "--prompt", "hi")
    assert result.returncode == 1
    assert result.stderr.strip() == "chatui: model path not found: /no/such/model"


def test_any_generation_config_field_as_key_value():
    options = parse_args(
        ["min_new_tokens=20", "num_beams=2", "eos_token_id=2", 'stop_strings=["###"]', "do_sample=FALSE"]
    )
    assert options.generation_overrides == {
        "min_new_tokens": 20,
        "num_beams": 2,
        "eos_token_id": 2,
        "stop_strings": ["###"],
        "do_sample": False,
    }
    assert options.generation.generate_kwargs()["num_beams"] == 2


def test_a_typo_exits_2_and_suggests_the_name():
    result = run_cli("temprature=0.5", "--prompt", "hi")
    assert result.returncode == 2
    assert "did you mean temperature?" in result.stderr and "Traceback" not in result.stderr


def test_generation_config_file_comes_before_config_toml_and_flags(tmp_path):
    import json

    from tui.store.config import Config

    (tmp_path / "generation_config.json").write_text(json.dumps({"temperature": 0.4, "top_k": 5, "num_beams": 3}))
    options = parse_args(["--generation-config", str(tmp_path), "top_k=9"])
    options.apply_config(Config(path=tmp_path / "config.toml", generation={"temperature": 0.6}))
    values = options.generation.values
    assert (values["temperature"], values["top_k"], values["num_beams"]) == (0.6, 9, 3)


def test_config_toml_generation_takes_any_generation_config_field(tmp_path):
    from tui.store.config import load_config

    path = tmp_path / "config.toml"
    path.write_text('[generation]\nmin_new_tokens = 12\neos_token_id = [2, 17]\nstop_strings = ["###"]\n')
    config = load_config(path)
    assert config.errors == []
    options = parse_args(["num_beams=2"])
    options.apply_config(config)
    values = options.generation.values
    assert (values["min_new_tokens"], values["eos_token_id"], values["stop_strings"], values["num_beams"]) == (
        12,
        [2, 17],
        ["###"],
        2,
    )
    path.write_text("[generation]\ntemprature = 0.5\n")
    assert any("did you mean temperature?" in error for error in load_config(path).errors)


def test_list_tools_prints_each_server_its_state_and_tools(tmp_path):
    import sys

    from processes import run_cli, subprocess_env

    env = subprocess_env(tmp_path)
    config = tmp_path / "config" / "chatui" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    script = (Path(__file__).parents[1] / "tools" / "mcp_test_server.py").as_posix()
    config.write_text(
        f'[mcp.servers.calc]\ncommand = "{sys.executable}"\nargs = ["{script}"]\n'
        f'[mcp.servers.broken]\ncommand = "{sys.executable}"\nargs = ["{script}", "--crash"]\n'
    )
    result = run_cli("--list-tools", env=env)
    assert result.returncode == 1  # one server failed
    assert "calc: ready" in result.stdout
    assert re.search(r"^  add +Add two whole numbers\.$", result.stdout, re.M), result.stdout
    assert "broken: failed (" in result.stdout and "crashing on purpose" in result.stdout
    assert "Traceback" not in result.stderr
    config.write_text("")
    result = run_cli("--list-tools", env=env)
    assert result.returncode == 1 and "no MCP servers are configured" in result.stderr


def test_the_app_without_a_terminal_says_so_instead_of_drawing_into_a_pipe(tmp_path):
    from processes import subprocess_env

    result = run_cli("--conversation", "last", env=subprocess_env(tmp_path))  # stdout is a pipe
    assert result.returncode == 2
    assert "the app needs a terminal" in result.stderr and "--prompt" in result.stderr and "--export" in result.stderr
    assert result.stdout == ""


def test_adapter_flags(tmp_path):
    odd = tmp_path / "a=b"
    odd.mkdir()
    options = parse_args(
        ["--adapter", "/lora/tone", "--adapter", "mine=org/lora", "--adapter", str(odd), "--merge-adapter"]
    )
    assert options.adapters == [(None, "/lora/tone"), ("mine", "org/lora"), (None, str(odd))]
    assert options.merge_adapter and parse_args([]).adapters == []
