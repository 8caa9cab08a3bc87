"""Shared fixtures: isolated platformdirs paths, the real SmolLM2 (converted once) and a tiny
random-weight model with the real SmolLM2 tokenizer, built once per test session."""

from __future__ import annotations

import inspect
import os
import tempfile
from pathlib import Path

# Before anything imports platformdirs users or huggingface_hub: no network, and config/data in
# a temporary place. The cache dir stays the user's, so the GGUF conversion is done only once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_TMP_HOME = Path(tempfile.mkdtemp(prefix="chatui-tests-"))
os.environ["XDG_CONFIG_HOME"] = str(_TMP_HOME / "config")
os.environ["XDG_DATA_HOME"] = str(_TMP_HOME / "data")
os.environ["XDG_STATE_HOME"] = str(_TMP_HOME / "state")  # the log file
# The remote backend honours HTTPS_PROXY/NO_PROXY, as users expect; the tests' servers are on
# 127.0.0.1 and their requests must never go through a proxy.
os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))

import pytest  # noqa: E402

TINY_CONTEXT = 512
REAL_MODEL_FIXTURES = {"smollm2_dir", "smollm2_engine", "smollm2_fp32_engine"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the real SmolLM2 is marked real_model (`-m "not real_model"` skips
    them for a quick run)."""
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and REAL_MODEL_FIXTURES & set(inspect.signature(function).parameters):
            item.add_marker(pytest.mark.real_model)


@pytest.fixture
def tui_log(caplog: pytest.LogCaptureFixture):
    """caplog for chatui's own loggers, also after a test ran the command line (which routes the
    "tui" loggers to the log file and stops them propagating to the root)."""
    import logging

    logger = logging.getLogger("tui")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="tui"):
            yield caplog
    finally:
        logger.removeHandler(caplog.handler)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """The real SmolLM2-135M-Instruct as a safetensors dir (converted from the bundled GGUF once)."""
    from tui.engine.sources import converted_gguf_dir, default_gguf_path

    return converted_gguf_dir(default_gguf_path())


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random-weight Llama with the real SmolLM2 tokenizer and chat template.
    It never emits end-of-turn (eos is unset), so replies run to max_new_tokens unless stopped."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-model")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=TINY_CONTEXT,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=None,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path):
    """One engine with the tiny model loaded, shared by tests that only generate."""
    from tui.engine import Engine, LoadSettings

    engine = Engine()
    engine.load(LoadSettings(model=str(tiny_model_dir))).result()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def smollm2_engine(smollm2_dir: Path):
    from tui.engine import Engine, LoadSettings

    engine = Engine()
    engine.load(LoadSettings()).result()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def smollm2_fp32_engine(smollm2_dir: Path):
    """The real model in float32, for comparisons that must be exact: in bf16 two attention kernels
    round differently and a greedy reply can take another word (see test_session_real)."""
    from tui.engine import Engine, LoadSettings

    engine = Engine()
    engine.load(LoadSettings(dtype="float32")).result()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def transformers_serve(tiny_model_dir: Path):
    """A real `transformers serve` on 127.0.0.1 with the tiny model, started once and stopped at
    the end (its /health answers first)."""
    import socket
    import subprocess
    import sys
    import time

    import httpx2

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        str(Path(sys.executable).with_name("transformers")),
        "serve",
        str(tiny_model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--device",
        "cpu",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"transformers serve ended: {process.stderr.read()[-2000:]}")
            try:
                if httpx2.get(f"{root}/health", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("transformers serve did not come up in 180 s")
            time.sleep(0.5)
        yield f"{root}/v1"
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_lora(model_dir: Path, out: Path, seed: int, targets: list[str], rank: int = 4) -> Path:
    """A LoRA adapter made with peft on the model at `model_dir`, with random (not zero) weights
    (init_lora_weights=False), so it changes the model's replies."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two LoRA adapters on the tiny model: "tone" (attention q/v, rank 4) and "style" (every
    linear layer, rank 8), made once per session."""
    root = tmp_path_factory.mktemp("tiny-adapters")
    every = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    return {
        "tone": make_lora(tiny_model_dir, root / "tone", 1, ["q_proj", "v_proj"]),
        "style": make_lora(tiny_model_dir, root / "style", 2, every, rank=8),
    }
