"""LoRA adapters at the size people fine-tune: the random-weight SmolLM2-1.7B shape of
bench_sizes.py with a rank-16 LoRA on every linear layer of its decoder (random weights too: speed
does not depend on their values), through chatui's engine, in one process:

- the adapter's load time onto the loaded model (the first load also imports peft), against the
  time to read its file (the issue's claim: about as long as reading the file, not a model
  reload) and the base model's load time;
- decode tok/s of the base model, with the adapter unmerged, and merged (`--merge-adapter`), for
  a 64-token prompt and 64 new tokens (greedy), each the best of two.

Figures and ratios from one run; no pass/fail.

    python benchmarks/bench_adapters.py [--model smollm2-1.7b|tiny] [--rank 16] [--dtype auto]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_sizes import CONFIGS, build, model_dir, prompt_messages  # noqa: E402

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
NEW_TOKENS = 64
# A shape to check that the script works in seconds (`--model tiny`), not to report.
CONFIGS.setdefault(
    "tiny",
    CONFIGS["smollm2-1.7b"]
    | {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}
    | {"num_key_value_heads": 2, "max_position_embeddings": 2048},
)


def make_adapter(name: str, rank: int) -> Path:
    """A LoRA with random weights on every decoder linear layer of model `name` (shapes from its
    config on the meta device: nothing is loaded), saved as peft saves one; made once."""
    folder = model_dir(name).with_name(f"{name}-lora-r{rank}")
    if (folder / "adapter_model.safetensors").exists():
        return folder
    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir(name)))
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for path, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and path.rsplit(".", 1)[-1] in TARGETS:
            a = torch.randn(rank, module.in_features, generator=generator) / module.in_features**0.5
            b = torch.randn(module.out_features, rank, generator=generator) / rank
            tensors[f"base_model.model.{path}.lora_A.weight"] = a.to(torch.bfloat16)
            tensors[f"base_model.model.{path}.lora_B.weight"] = b.to(torch.bfloat16)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, folder / "adapter_model.safetensors", metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "r": rank,
        "lora_alpha": 2 * rank,
        "lora_dropout": 0.0,
        "target_modules": list(TARGETS),
        "bias": "none",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": str(model_dir(name)),
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return folder


def decode_rate(engine, settings) -> float:
    rates = []
    for _ in range(2):
        engine.turn_cache.drop()
        rates.append(engine.generate(prompt_messages(), settings).wait().metrics.decode_tok_s)
    return max(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-1.7b", choices=sorted(CONFIGS))
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()

    from safetensors.torch import load_file

    from tui.engine import Engine, GenerationSettings, LoadSettings

    build(args.model)
    adapter = make_adapter(args.model, args.rank)
    size_mb = (adapter / "adapter_model.safetensors").stat().st_size / 2**20
    started = time.perf_counter()
    load_file(adapter / "adapter_model.safetensors")
    read_s = time.perf_counter() - started

    engine = Engine()
    started = time.perf_counter()
    info = engine.load(LoadSettings(model=str(model_dir(args.model)), dtype=args.dtype)).result()
    model_load_s = time.perf_counter() - started
    settings = GenerationSettings().with_updates(
        {"do_sample": False, "max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS}
    )
    base = decode_rate(engine, settings)
    started = time.perf_counter()
    engine.adapters.load(str(adapter), "bench").result()
    first_load_s = time.perf_counter() - started  # imports peft too
    engine.adapters.unload("bench").result()
    started = time.perf_counter()
    engine.adapters.load(str(adapter), "bench").result()
    adapter_load_s = time.perf_counter() - started
    unmerged = decode_rate(engine, settings)
    started = time.perf_counter()
    engine.adapters.merge().result()
    merge_s = time.perf_counter() - started
    merged = decode_rate(engine, settings)
    engine.close()

    print(
        f"{args.model} {info.dtype}, LoRA r{args.rank} on {', '.join(TARGETS)} ({size_mb:.0f} MB):\n"
        f"  load: adapter {adapter_load_s:.2f} s (the first, importing peft: {first_load_s:.2f} s; reading its "
        f"file: {read_s:.2f} s; the base model: {model_load_s:.1f} s); merge {merge_s:.2f} s\n"
        f"  decode tok/s: base {base:.2f} · unmerged {unmerged:.2f} ({unmerged / base:.2f}x) · "
        f"merged {merged:.2f} ({merged / base:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
