"""The model catalogue: facts read from real tiny models' files, the estimates against their
formula, and the sources (HF cache, library history, config.toml paths, the bundled model)."""

from __future__ import annotations

import json
import shutil
import struct
import time
from pathlib import Path

import pytest

from tui.core.catalogue import Target, build_catalogue, entry_line
from tui.engine.estimates import bytes_per_token, estimate, limit_pct, roofline_tok_s, stored_bytes_per_parameter
from tui.engine.machine import Bandwidth, Machine
from tui.engine.model_files import find_adapters, gguf_metadata, inspect_model
from tui.engine.settings import LoadSettings
from tui.engine.sources import default_gguf_path

GB = 10**9


def _machine(free: int = 16 * 2**30) -> Machine:
    return Machine(cpu="test", cores=2, cpu_features=[], memory_total=free, memory_available=free)


def _target(free: int = 16 * 2**30, load: LoadSettings | None = None) -> Target:
    return Target.of(_machine(free), Bandwidth(10 * GB, "cpu", time.time()), load or LoadSettings(dtype="float32"))


def test_facts_of_a_model_folder_match_the_model(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    facts = inspect_model(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert facts.architecture == "LlamaForCausalLM" and facts.model_type == "llama"
    assert facts.parameters == model.num_parameters()
    assert facts.dtype == "float32" and facts.weight_bytes == 4 * facts.parameters
    assert facts.chat_template and not facts.vision and facts.tied_embeddings
    assert facts.embedding_parameters == model.config.vocab_size * model.config.hidden_size
    assert facts.size_bytes == sum(p.stat().st_size for p in tiny_model_dir.iterdir())
    assert facts.context_size == 512 and not facts.problem


def test_facts_of_a_gguf_file_come_from_its_header() -> None:
    facts = inspect_model(default_gguf_path())
    assert facts.architecture == "llama" and facts.chat_template
    assert facts.parameters == 134_515_008  # SmolLM2-135M
    assert facts.dtype == "Q4_1" and facts.weight_bytes < facts.parameters  # under a byte a weight
    assert facts.context_size == 8192 and facts.tied_embeddings


def test_a_broken_gguf_is_a_problem_not_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 3) + b"\x01")
    facts = inspect_model(bad)
    assert facts.problem.startswith("cannot read bad.gguf") and facts.parameters == 0
    (tmp_path / "notgguf.gguf").write_bytes(b"nope" * 10)
    with pytest.raises(Exception, match="not a GGUF"):
        gguf_metadata(tmp_path / "notgguf.gguf")


def test_vision_and_adapters_are_found(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "vlm"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["vision_config"] = {"hidden_size": 8}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "my-lora").mkdir()
    (folder / "my-lora" / "adapter_config.json").write_text("{}")
    facts = inspect_model(folder)
    assert facts.vision and facts.modality == "vision"
    assert facts.adapters == find_adapters(folder) == ["my-lora"]


def test_estimates_follow_the_formula() -> None:
    params, embedding = 1_000_000_000, 100_000_000
    assert bytes_per_token(params, embedding, True, "none", "bfloat16") == 2 * params
    assert bytes_per_token(params, embedding, False, "none", "float32") == 4 * (params - embedding)
    assert bytes_per_token(params, embedding, True, "int4", "bfloat16") == int(params * (0.5 + 4 / 32))
    guess = estimate(params, embedding, True, "bfloat16", "none", 3 * 2**30, 20 * GB)
    assert guess.memory_needed == 2 * params and guess.fits
    assert guess.tok_s == pytest.approx(20 * GB / (2 * params)) == roofline_tok_s(2 * params, 20 * GB)
    assert not estimate(params, embedding, True, "float32", "none", 3 * 2**30, 20 * GB).fits
    assert limit_pct(5.0, 2 * params, 20 * GB) == pytest.approx(50.0)
    assert stored_bytes_per_parameter("none", "float16") == 2


def test_the_catalogue_lists_the_cache_history_config_and_bundled(hub_cache: Path, tiny_model_dir: Path) -> None:
    used = [(str(tiny_model_dir), "", 2000.0), ("chatui-test/tiny-chat", "", 1000.0), ("gone/model", "", 500.0)]
    used.append(("served-model", "http://127.0.0.1:9/v1", 100.0))
    entries, problems = build_catalogue(_target(), used, [str(tiny_model_dir), "/no/such/dir"])
    by_name = {entry.name: entry for entry in entries}
    assert len(problems) == 1 and problems[0].startswith("config.toml lists /no/such/dir, which cannot be read: ")
    assert [e.name for e in entries][:3] == [tiny_model_dir.name, "chatui-test/tiny-chat", "gone/model"]
    chat, base = by_name["chatui-test/tiny-chat"], by_name["chatui-test/tiny-base"]
    assert chat.origins == ["cache", "history"] and chat.last_used == 1000.0
    assert chat.facts.chat_template and not base.facts.chat_template
    assert chat.facts.dtype == "float32" and base.facts.dtype == "bfloat16"
    assert chat.facts.parameters == base.facts.parameters > 0
    assert by_name[tiny_model_dir.name].origins == ["config", "history"]
    assert by_name["gone/model"].origins == ["history"] and not by_name["gone/model"].in_hub_cache
    assert by_name["SmolLM2-135M-Instruct"].origins == ["bundled"] and by_name["SmolLM2-135M-Instruct"].model == ""
    assert by_name["served-model"].kind == "remote" and by_name["served-model"].estimate is None
    assert chat.estimate is not None and chat.estimate.dtype == "float32"
    assert chat.estimate.tok_s == pytest.approx(10 * GB / chat.estimate.bytes_per_token)


def test_a_model_that_will_not_fit_is_marked(hub_cache: Path) -> None:
    entries, _ = build_catalogue(_target(free=2**20), [], [])
    chat = next(e for e in entries if e.name == "chatui-test/tiny-chat")
    assert chat.estimate is not None and not chat.estimate.fits
    assert "WILL NOT FIT" in entry_line(chat)


def test_the_load_settings_choose_the_estimates_dtype(hub_cache: Path) -> None:
    entries, _ = build_catalogue(_target(load=LoadSettings(dtype="bfloat16", quantization="int4")), [], [])
    chat = next(e for e in entries if e.name == "chatui-test/tiny-chat")
    assert chat.estimate is not None and chat.estimate.quantization == "int4"
    assert chat.estimate.bytes_per_token == int(chat.facts.parameters * stored_bytes_per_parameter("int4", "bfloat16"))


def test_one_line_per_model(hub_cache: Path) -> None:
    entries, _ = build_catalogue(_target(), [("chatui-test/tiny-chat", "", time.time() - 7200)], [])
    line = entry_line(next(e for e in entries if e.name == "chatui-test/tiny-chat"))
    assert line.startswith("chatui-test/tiny-chat  LlamaForCausalLM  3M  float32  ")
    assert "chat  text" in line and "(fits)" in line and "tok/s at float32" in line and "used 2h ago" in line


def test_the_servers_models_are_listed_and_a_server_that_is_down_is_one_problem(hub_cache: Path) -> None:
    from fake_openai import FakeOpenAI

    with FakeOpenAI() as server:
        used = [("fake/model-b", server.url, 100.0), ("chatui-test/tiny-chat", server.url, 50.0)]
        entries, problems = build_catalogue(_target(), used, [], endpoint=server.url)
    remote = [e for e in entries if e.kind == "remote"]
    assert [(e.name, e.endpoint, e.origins) for e in remote] == [
        ("fake/model-b", server.url, ["history", "server"]),
        ("chatui-test/tiny-chat", server.url, ["history"]),  # served once, kept apart from the cached one
        ("fake/model-a", server.url, ["server"]),
    ]
    cached = next(e for e in entries if e.name == "chatui-test/tiny-chat" and e.kind == "hub")
    assert cached.origins == ["cache"]
    assert problems == []
    entries, problems = build_catalogue(_target(), [], [], endpoint="http://127.0.0.1:9/v1")
    assert not [e for e in entries if e.kind == "remote"] and len(problems) == 1
    assert problems[0].startswith("server http://127.0.0.1:9/v1: ")


def test_a_gguf_not_yet_converted_needs_float32_memory_for_its_first_load() -> None:
    from tui.core.catalogue import estimate_for
    from tui.engine.model_files import ModelFacts

    facts = ModelFacts(architecture="LlamaForCausalLM", parameters=1_000_000_000, dtype="")
    target = _target(load=LoadSettings(dtype="bfloat16"))
    converted = estimate_for(facts, True, target)
    first = estimate_for(facts, True, target, converting=True)
    assert converted is not None and first is not None
    assert first.memory_needed == 4 * 10**9 > converted.memory_needed  # transformers dequantizes to float32
    assert first.tok_s == converted.tok_s  # decoding afterwards is the same
