"""Model loads that fail, each with one clear line: an unsupported GGUF, a model larger than memory,
missing bitsandbytes, pickle-only weights."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest
from broken_models import write_huge_config, write_pickle_only, write_unsupported_gguf
from processes import ROOT, subprocess_env

from tui.engine import LoadError, LoadSettings


def load_error(settings: LoadSettings) -> str:
    from tui.engine.loading import load_model

    with pytest.raises(LoadError) as caught:
        load_model(settings)
    text = str(caught.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_gguf_of_an_unsupported_architecture_is_one_clear_line(tmp_path):
    gguf_file = write_unsupported_gguf(tmp_path / "weird.gguf")
    assert "mamba3000" in load_error(LoadSettings(model=str(gguf_file)))
    garbage = tmp_path / "garbage.gguf"
    garbage.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 300)
    assert "garbage.gguf" in load_error(LoadSettings(model=str(garbage)))
    # Headless: exit code 1, one line on stderr, no traceback.
    result = subprocess.run(
        [sys.executable, "-m", "tui", str(gguf_file), "--prompt", "hi"],
        cwd=ROOT,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chatui: ") and "mamba3000" in lines[0], result.stderr
    assert result.stdout == ""


def test_a_model_larger_than_memory_is_refused_before_allocating(tmp_path, tiny_model_dir):
    import torch  # noqa: F401  (imported first, so RSS measures the check, not the imports)
    import transformers  # noqa: F401
    from accelerate import init_empty_weights  # noqa: F401

    huge = write_huge_config(tmp_path / "huge", tiny_model_dir)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    text = load_error(LoadSettings(model=str(huge)))
    elapsed = time.perf_counter() - started
    rss_jump = process.memory_info().rss - rss_before
    print(f"\nhuge config refused in {elapsed:.2f} s, RSS +{rss_jump / 2**20:.0f} MB: {text}")
    assert text.startswith("out of memory"), text
    assert "GiB" in text  # with the numbers: what it needs and what is there
    assert elapsed < 10
    assert rss_jump < 200 * 2**20


def test_quantization_without_bitsandbytes_names_it(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` raises ImportError
    text = load_error(LoadSettings(model=str(tiny_model_dir), quantization="8bit"))
    assert "bitsandbytes" in text and "8bit" in text


def test_pickle_only_weights_need_allow_pickle(tmp_path, tiny_model_dir):
    from tui.engine.loading import load_model

    folder = write_pickle_only(tmp_path / "pickled", tiny_model_dir)
    text = load_error(LoadSettings(model=str(folder)))
    assert "--allow-pickle" in text, text
    loaded = load_model(LoadSettings(model=str(folder), allow_pickle=True))
    assert loaded.info.parameters > 0
