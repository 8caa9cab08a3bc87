"""The roofline: bytes one decoded token reads for a loaded model, the share of the bandwidth
limit a measured decode speed is, in the status bar and in `--stats` (on the real bundled model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.cli.headless import bandwidth_share
from tui.engine.estimates import bytes_per_token, limit_pct
from tui.engine.machine import memory_bandwidth
from tui.engine.metrics import TurnMetrics
from tui.engine.model_files import inspect_model
from tui.engine.quantization import bytes_read_per_token, weight_bytes
from tui.engine.settings import GenerationSettings
from tui.ui.state import AppState
from tui.ui.widgets.status_bar import StatusInfo


def test_a_tied_model_reads_all_its_weights_an_untied_one_not_its_embedding() -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=1000,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    untied = LlamaForCausalLM(config)
    assert bytes_read_per_token(untied) == weight_bytes(untied) - 1000 * 32 * 4
    config.tie_word_embeddings = True
    tied = LlamaForCausalLM(config)
    assert bytes_read_per_token(tied) == weight_bytes(tied)


def test_the_loaded_tiny_model_reads_what_the_estimate_says(tiny_engine, tiny_model_dir: Path) -> None:
    """The estimate from the files (before a load) against the loaded model, and a measured run."""
    facts = inspect_model(tiny_model_dir)
    info = tiny_engine.info
    expected = bytes_per_token(
        facts.parameters, facts.embedding_parameters, facts.tied_embeddings, info.quantization, info.dtype
    )
    assert info.bytes_per_token == pytest.approx(expected, rel=0.01)  # buffers (rotary) aside
    reply = tiny_engine.generate(
        [{"role": "user", "content": "Hi"}],
        GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 12}),
    ).wait()
    share = limit_pct(reply.metrics.decode_tok_s, info.bytes_per_token, memory_bandwidth("cpu").bytes_per_s)
    assert share > 0


def test_the_status_bar_shows_the_share_of_the_limit() -> None:
    info = StatusInfo(state=AppState.READY, tok_s=13.5, tok_s_limit=32.1)
    assert "13.5 tok/s · 42 % of bandwidth limit" in info.render()
    assert "bandwidth" not in StatusInfo(state=AppState.READY, tok_s=13.5).render()


def test_stats_line_ends_with_limit_pct() -> None:
    line = TurnMetrics(new_tokens=5, decode_tok_s=10.0).stats_line(1, "bfloat16", "none", limit_pct=42.4)
    assert line.endswith(" dtype=bfloat16 quantization=none limit_pct=42")


def test_the_bundled_model_decodes_at_a_sane_share_of_the_limit(smollm2_engine) -> None:
    """What `--stats` prints as limit_pct (headless.bandwidth_share), on the real SmolLM2-135M."""
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 24})
    reply = smollm2_engine.generate([{"role": "user", "content": "Name three colours."}], settings).wait()
    share = bandwidth_share(smollm2_engine.info, reply.metrics.decode_tok_s)
    assert share is not None and 0 < share <= 100


def test_a_decode_faster_than_the_cached_bandwidth_allows_raises_the_figure(tmp_path, monkeypatch) -> None:
    """A bandwidth measured while other work ran is too low; the first decode that beats it
    replaces it, and the share says 100 rather than more."""
    from tui.engine import machine
    from tui.engine.loading import ModelInfo

    monkeypatch.setattr(machine, "_bandwidth_file", lambda: tmp_path / "bandwidth.json")
    monkeypatch.setattr(machine, "measure_bandwidth", lambda device: 1e9)  # 1 GB/s, "under load"
    assert machine.memory_bandwidth("cpu").bytes_per_s == 1e9
    info = ModelInfo(
        name="m",
        source="m",
        device="cpu",
        dtype="bfloat16",
        quantization="none",
        attn_implementation="sdpa",
        context_size=2048,
        parameters=50_000_000,
        footprint_bytes=100_000_000,
        has_chat_template=True,
        load_seconds=1.0,
        bytes_per_token=100_000_000,
    )
    assert bandwidth_share(info, 5.0) == 50.0  # 0.5 GB/s of 1 GB/s
    assert bandwidth_share(info, 20.0) == 100.0  # 2 GB/s seen: the figure was low
    assert machine.cached_bandwidth("cpu").bytes_per_s == 2e9
    assert bandwidth_share(info, 5.0) == 25.0
