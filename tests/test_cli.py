import subprocess
import sys

import pytest

from tui.cli import main, parse_args


def run_cli(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "tui", *args], capture_output=True, text=True, input=stdin, timeout=300
    )


def test_parse_model_flags_and_settings():
    options = parse_args(["some/model", "do_sample=false", "max_new_tokens=64", "--dtype", "bfloat16",
                          "--prompt", "hi", "temperature=0.5", "--stats"])
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
        (["model", "stray", "--prompt", "x"], "unexpected argument"),
        (["--dtype", "float8"], "invalid choice"),
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


def test_headless_streams_replies_and_stats(tiny_model_dir):
    result = run_cli(str(tiny_model_dir), "do_sample=false", "max_new_tokens=8", "--prompt", "Hi",
                     "--prompt", "-", "--stats", stdin="from stdin\n")
    assert result.returncode == 0, result.stderr
    lines = [l for l in result.stderr.splitlines() if l.startswith("turn=")]
    assert len(lines) == 2 and lines[1].startswith("turn=2 ")
    fields = dict(part.split("=") for part in lines[0].split())
    assert set(fields) == {"turn", "prompt_tokens", "new_tokens", "ttft_ms", "decode_tok_s", "total_ms", "rss_mb"}
    assert fields["new_tokens"] == "8"
    assert result.stdout.count("\n") >= 2  # each reply ends with a newline


def test_headless_default_model_answers_paris(smollm2_dir):
    result = run_cli("--prompt", "What is the capital of France?", "do_sample=false", "--stats")
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert "turn=1 prompt_tokens=" in result.stderr
