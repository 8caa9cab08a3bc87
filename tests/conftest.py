"""Shared fixtures: isolated platformdirs paths, the real SmolLM2 (converted once) and a tiny
random-weight model with the real SmolLM2 tokenizer, built once per test session."""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from pathlib import Path

# Before anything imports platformdirs users or huggingface_hub: no network, and config/data in
# a temporary place. The cache dir stays the user's, so the GGUF conversion is done only once.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Parallel test processes (pytest-xdist) share the cores: torch's threads per process shrink to
# match, or each process's matmuls wait on the other's threads.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))
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


def tiny_llama_config(tokenizer):
    """The tiny models' 2-layer Llama text config over `tokenizer`; no end-of-turn token, so
    replies run to max_new_tokens unless stopped."""
    from transformers import LlamaConfig

    return LlamaConfig(
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


@pytest.fixture(scope="session")
def tiny_model_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random-weight Llama with the real SmolLM2 tokenizer and chat template.
    It never emits end-of-turn (eos is unset), so replies run to max_new_tokens unless stopped."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    out = tmp_path_factory.mktemp("tiny-model")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    config = tiny_llama_config(tokenizer)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


# A ChatML template that reads content parts (images as the processor's <image> placeholder).
TINY_VLM_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="session")
def tiny_vlm_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight LLaVA (a 2-layer CLIP vision tower on 32x32 images, 16 image tokens, and a
    2-layer Llama) with the real SmolLM2 tokenizer plus an `<image>` token, and LLaVA's Pillow
    image processor saved under its usual name (transformers picks the Pillow one: no
    torchvision). The projector's weights are scaled up so the image steers the tiny model's
    reply (a red and a blue picture get different greedy replies). Never emits end-of-turn."""
    import torch
    from transformers import AutoTokenizer, CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration
    from transformers.models.llava import LlavaProcessor
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

    out = tmp_path_factory.mktemp("tiny-vlm")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    tokenizer.add_tokens(["<image>"], special_tokens=True)
    tokenizer.chat_template = TINY_VLM_TEMPLATE
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
    )
    text = tiny_llama_config(tokenizer)
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        image_seq_length=16,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    with torch.no_grad():
        for weight in model.model.multi_modal_projector.parameters():
            weight.mul_(8)
    model.generation_config.eos_token_id = None
    image_processor = LlavaImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=TINY_VLM_TEMPLATE,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_idefics3_dir(smollm2_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Idefics3 (SmolVLM's architecture: a SigLIP tower, pixel shuffle, images
    split into tiles plus a global view, each wrapped in its own tokens) with the SmolLM2
    tokenizer and Idefics3's Pillow image processor. Never emits end-of-turn."""
    import torch
    from transformers import AutoTokenizer, Idefics3Config, Idefics3ForConditionalGeneration, Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    out = tmp_path_factory.mktemp("tiny-idefics3")
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    tokenizer.add_tokens(["<fake_token_around_image>", "<image>", "<global-img>"], special_tokens=True)
    tokenizer.chat_template = TINY_VLM_TEMPLATE
    config = Idefics3Config(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 1024,
            "bos_token_id": tokenizer.bos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=2,
    )
    torch.manual_seed(0)
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = None
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": 64}, max_image_size={"longest_edge": 32}, do_image_splitting=True
    )
    processor = Idefics3Processor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4, chat_template=TINY_VLM_TEMPLATE
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_vlm_engine(tiny_vlm_dir: Path):
    """One engine with the tiny vision model loaded (float32), shared by tests that only generate."""
    from tui.engine import Engine, LoadSettings

    engine = Engine()
    engine.load(LoadSettings(model=str(tiny_vlm_dir), dtype="float32")).result()
    yield engine
    engine.close()


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
    yield from serve(tiny_model_dir)


@pytest.fixture(scope="session")
def transformers_serve_vlm(tiny_vlm_dir: Path):
    """A real `transformers serve` with the tiny vision model."""
    yield from serve(tiny_vlm_dir)


def serve(model_dir: Path):
    """`transformers serve MODEL_DIR` on a free port, until the generator is closed."""
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
        str(model_dir),
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


@pytest.fixture(scope="session")
def fake_hub_cache(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face hub cache made of real tiny models, downloaded once through huggingface_hub
    from the local Hub (tests/hub_server.py): chatui-test/tiny-chat (the tiny model, float32,
    with a chat template) and chatui-test/tiny-base (the same in bfloat16, no chat template)."""
    import shutil

    import torch
    from hub_server import HubServer
    from huggingface_hub import constants
    from transformers import AutoModelForCausalLM

    from tui.engine.downloads import download, plan_download

    base = tmp_path_factory.mktemp("tiny-base")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16)
    model.save_pretrained(base)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, base / name)
    tokenizer_config = json.loads((base / "tokenizer_config.json").read_text())
    tokenizer_config.pop("chat_template", None)
    (base / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    cache = tmp_path_factory.mktemp("hf-home") / "hub"
    with HubServer() as hub, pytest.MonkeyPatch.context() as patch:
        hub.state.add_folder("chatui-test/tiny-chat", tiny_model_dir)
        hub.state.add_folder("chatui-test/tiny-base", base)
        patch.setenv("HF_ENDPOINT", hub.url)
        patch.setattr(constants, "HF_HUB_OFFLINE", False)
        patch.setattr(constants, "HF_HUB_CACHE", str(cache))
        for repo_id in ("chatui-test/tiny-chat", "chatui-test/tiny-base"):
            download(plan_download(repo_id))
    return cache


@pytest.fixture
def hub_cache(fake_hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """huggingface_hub reads the fake cache (fake_hub_cache) for this test."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(fake_hub_cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(fake_hub_cache))
    return fake_hub_cache


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
