"""`chatui --download`, `--models` and `--doctor` from the command line, for real: a chatui
process downloads from the local Hub (tests/hub_server.py) into a fresh HF_HOME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hub_server import HubServer
from processes import run_cli, subprocess_env

from tui.cli.main import main


@pytest.fixture
def local_hub(tiny_model_dir: Path):
    with HubServer() as hub:
        hub.state.add_folder("org/tiny", tiny_model_dir)
        hub.state.add_folder("org/gated", tiny_model_dir, gated=True)
        yield hub


@pytest.fixture
def online_env(tmp_path: Path, local_hub: HubServer) -> dict[str, str]:
    env = subprocess_env(tmp_path)
    env.update(HF_HUB_OFFLINE="0", HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=local_hub.url)
    env.pop("HF_HUB_CACHE", None)
    env.pop("HF_TOKEN", None)
    return env


def test_download_then_models_lists_it(online_env: dict[str, str], tmp_path: Path, tiny_model_dir: Path) -> None:
    result = run_cli("--download", "org/tiny", env=online_env)
    assert result.returncode == 0, result.stderr
    snapshot = Path(result.stdout.strip())
    assert snapshot.is_relative_to(tmp_path / "hf" / "hub" / "models--org--tiny" / "snapshots")
    assert (snapshot / "model.safetensors").read_bytes() == (tiny_model_dir / "model.safetensors").read_bytes()
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("org/tiny: ") and " files, " in lines[0]
    assert len(lines) == 1  # quiet: no library bars or warnings on the terminal

    listing = run_cli("--models", "--json", env=online_env)
    assert listing.returncode == 0, listing.stderr
    entries = {entry["name"]: entry for entry in json.loads(listing.stdout)}
    tiny = entries["org/tiny"]
    assert tiny["origins"] == ["cache"] and tiny["facts"]["architecture"] == "LlamaForCausalLM"
    assert tiny["estimate"]["fits"] is True and tiny["estimate"]["tok_s"] > 0
    assert "SmolLM2-135M-Instruct" in entries

    offline = dict(online_env, HF_HUB_OFFLINE="1")  # what was downloaded loads by its id, offline
    reply = run_cli("org/tiny", "--prompt", "hi", "max_new_tokens=3", "do_sample=false", env=offline)
    assert reply.returncode == 0, reply.stderr


def test_a_connection_that_keeps_dropping_is_one_line(online_env: dict[str, str], local_hub: HubServer) -> None:
    """huggingface_hub's own retry warnings go to the log file, not the terminal."""
    local_hub.state.drops["model.safetensors"] = 100
    result = run_cli("--download", "org/tiny", env=online_env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, lines  # the plan's line, then the failure
    assert lines[1].startswith("chatui: ") and "model.safetensors" in lines[1]


def test_download_failures_are_one_line(online_env: dict[str, str]) -> None:
    missing = run_cli("--download", "org/missing", env=online_env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "chatui: no model 'org/missing' on the Hub (404): check the id"
    gated = run_cli("--download", "org/gated", env=online_env)  # no terminal to ask for a token
    assert gated.returncode == 1
    assert gated.stderr.strip().splitlines() == [
        "chatui: org/gated is gated: accept its terms on huggingface.co, then give a token with access to it",
        "chatui: run `hf auth login` or set HF_TOKEN, then download again",
    ]


def test_download_offline_says_so_and_lists_the_cache(online_env: dict[str, str]) -> None:
    assert run_cli("--download", "org/tiny", env=online_env).returncode == 0
    offline = run_cli("--download", "org/other", env={**online_env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 1
    lines = offline.stderr.strip().splitlines()
    assert lines[0] == "chatui: the Hub is offline (HF_HUB_OFFLINE is set): nothing can be downloaded"
    assert lines[1] == "cached models:" and lines[2].startswith("  org/tiny  ")


def test_doctor_names_the_machine_and_the_choice(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--doctor"]) == 0
    out = capsys.readouterr().out
    fields = dict(line.split(": ", 1) for line in out.strip().splitlines() if not line.startswith("unavailable"))
    assert {"cpu", "memory", "gpu", "memory bandwidth", "device", "dtype", "quantization", "hub cache"} <= set(fields)
    assert fields["dtype"].split()[0] in ("bfloat16", "float32", "float16")
    assert float(fields["memory bandwidth"].split()[0]) > 0
    assert fields["int4 kernel"].startswith("chatui's")  # x86 with a compiler: its own kernel, not torchao's


def test_json_without_models_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--json"])
    assert exit_info.value.code == 2
    assert "--json goes with --models" in capsys.readouterr().err
