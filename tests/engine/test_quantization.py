"""Quantization named as transformers serve names it: int4 (chatui's kernel, torchao's where that
cannot build) quantizes on the torch thread with the load's progress bar; 8bit and 4bit still
mean bitsandbytes."""

from __future__ import annotations

import sys

import pytest

from tui.engine import Engine, Finished, GenerationSettings, LoadError, LoadSettings
from tui.engine.quantization import INT4_GROUP_SIZE, int4_backend, packed_format


def int4_cache_file(model_dir, dtype: str):
    from tui.engine import int4_cache

    return int4_cache.cache_file(str(model_dir), dtype, INT4_GROUP_SIZE, packed_format(int4_backend()[0]))


def test_names_and_aliases():
    assert LoadSettings(quantization="8bit").quantization == "bnb-8bit"
    assert LoadSettings(quantization="4bit").quantization == "bnb-4bit"
    assert LoadSettings(quantization="int4").quantization == "int4"
    with pytest.raises(ValueError, match="not one of none, int4, bnb-8bit, bnb-4bit"):
        LoadSettings(quantization="int3")


def test_int4_quantizes_every_linear_layer_with_progress_and_answers(tiny_model_dir):
    int4_cache_file(tiny_model_dir, "float32").unlink(missing_ok=True)
    progress: list[tuple[int, str]] = []
    engine = Engine()
    try:
        info = engine.load(
            LoadSettings(model=str(tiny_model_dir), quantization="int4", dtype="float32"),
            lambda done, total, label: progress.append((done, label)),
        ).result()
        assert info.quantization == "int4" and info.warnings == []  # chatui's kernel: nothing to say
        model = engine.loaded.model
        kinds = {type(module).__name__ for module in model.modules() if "Linear" in type(module).__name__}
        assert kinds == {"Int4Linear"}, kinds  # every linear layer, the output layer too
        steps = [done for done, label in progress if label == "quantizing to int4"]
        assert steps and steps == sorted(steps) and steps[-1] >= 98
        settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 6})
        final = engine.generate([{"role": "user", "content": "hi"}], settings).wait()
        assert isinstance(final, Finished) and final.metrics.new_tokens == 6
    finally:
        engine.close()
    assert 64 % INT4_GROUP_SIZE == 0  # the tiny model's width: every layer could be quantized


def test_int4_needs_no_torchao_with_chatuis_kernel(monkeypatch, tiny_model_dir):
    monkeypatch.setitem(sys.modules, "torchao", None)
    engine = Engine()
    try:
        info = engine.load(LoadSettings(model=str(tiny_model_dir), quantization="int4")).result()
        assert info.quantization == "int4" and info.warnings == []
    finally:
        engine.close()


def test_int4_without_its_kernel_or_torchao_names_both(monkeypatch, tiny_model_dir):
    from tui.engine import int4_kernel

    monkeypatch.setitem(sys.modules, "torchao", None)
    monkeypatch.setattr(int4_kernel, "build_problem", lambda: "no C++ compiler (c++) to build chatui's int4 kernel")
    engine = Engine()
    try:
        with pytest.raises(LoadError, match=r"needs chatui's kernel \(no C\+\+ compiler .*\) or torchao"):
            engine.load(LoadSettings(model=str(tiny_model_dir), quantization="int4")).result()
    finally:
        engine.close()


def test_weight_bytes_counts_packed_int4_and_tied_weights_once():
    import torch

    from tui.engine.quantization import quantize_int4, weight_bytes

    embedding = torch.nn.Embedding(512, 256, dtype=torch.bfloat16)
    head = torch.nn.Linear(256, 512, bias=False, dtype=torch.bfloat16)
    head.weight = embedding.weight  # tied, as most small chat models are
    model = torch.nn.ModuleDict({"embed": embedding, "head": head})
    assert weight_bytes(model) == 512 * 256 * 2
    quantize_int4(model)
    # the head is now its own int4 copy: 4 bits a weight plus a 16-bit scale and minimum per group
    int4_head = 512 * 256 // 2 + 512 * (256 // INT4_GROUP_SIZE) * 2 * 2
    assert weight_bytes(model) == 512 * 256 * 2 + int4_head


def _greedy_reply(settings: LoadSettings, labels: list[str] | None = None) -> str:
    engine = Engine()
    try:
        engine.load(settings, lambda done, total, label: labels.append(label) if labels is not None else None).result()
        generation = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 8})
        final = engine.generate([{"role": "user", "content": "hi"}], generation).wait()
        assert isinstance(final, Finished)
        return final.text
    finally:
        engine.close()


def test_int4_weights_are_cached_and_the_next_load_does_not_quantize(tiny_model_dir, monkeypatch, tui_log):
    from tui.engine import loading

    settings = LoadSettings(model=str(tiny_model_dir), quantization="int4", dtype="bfloat16")
    path = int4_cache_file(tiny_model_dir, "bfloat16")
    path.unlink(missing_ok=True)
    first = _greedy_reply(settings)
    assert path.is_file()

    def quantize_again(*args, **kwargs):
        raise AssertionError("quantized although the cache holds the weights")

    with monkeypatch.context() as patched:
        patched.setattr(loading, "quantize_int4", quantize_again)
        labels: list[str] = []
        assert _greedy_reply(settings, labels) == first  # the same weights, the same reply
        assert "reading cached int4 weights" in labels

    path.write_bytes(b"not a torch file")  # a broken cache file is replaced, never an error
    labels = []
    assert _greedy_reply(settings, labels) == first
    assert any("int4 cache" in r.getMessage() and "unreadable" in r.getMessage() for r in tui_log.records)
    assert "quantizing to int4" in labels and path.stat().st_size > 1000
    # another dtype is another file; the key follows the checkpoint's files
    assert int4_cache_file(tiny_model_dir, "float32") != path


def test_each_int4_kernel_keeps_its_own_cache_file(tiny_model_dir, tmp_path):
    """Loading with the other kernel (CHATUI_INT4_KERNEL=torchao) no longer replaces the first
    kernel's file, so switching back does not quantize again; a newer file of the same kernel does."""
    from tui.engine import int4_cache

    chatui = int4_cache.cache_file(str(tiny_model_dir), "bfloat16", 32, "chatui-q4-b32-t16-v1")
    torchao = int4_cache.cache_file(str(tiny_model_dir), "bfloat16", 32, int4_cache.TORCHAO)
    assert chatui is not None and torchao is not None and chatui != torchao
    assert "-chatui-" in chatui.name and "-torchao-" in torchao.name
    chatui.parent.mkdir(parents=True, exist_ok=True)
    old_chatui = chatui.with_name(chatui.name.replace(chatui.stem[-16:], "0" * 16))
    unnamed = chatui.with_name(chatui.name.split("-chatui-")[0] + "-" + "1" * 16 + ".pt")  # before the kernel was named
    for stale in (old_chatui, unnamed, torchao):
        stale.write_bytes(b"x")
    int4_cache.save(torch_module(), [], chatui, "chatui-q4-b32-t16-v1")
    assert chatui.is_file() and torchao.is_file()  # the other kernel's file stays
    assert not old_chatui.exists() and not unnamed.exists()
    for path in (chatui, torchao):
        path.unlink()


def torch_module():
    import torch

    return torch.nn.Sequential()
