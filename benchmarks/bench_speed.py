"""Each speed option vs bare `model.generate`, on the default SmolLM2-135M (fp32, greedy).

Three replies of up to 160 tokens: a free story (nothing to repeat), a code edit (some repeats)
and a quote of the prompt (all repeats). For each option: decode tok/s over the whole reply
(prefill excluded: the time of a 1-token run is subtracted), its ratio to bare `generate`, and
whether the greedy text is the same. Options:

- chatui default: the engine's in-place growing KV cache (no per-token torch.cat copies);
- adaptive prompt lookup (chatui, `prompt_lookup_num_tokens=10`) and, for comparison,
  transformers' own prompt lookup with the same setting;
- assisted decoding with a draft model: only SmolLM2-135M itself is available offline, so the
  draft is as large as the model (a real draft is 5-20x smaller);
- static cache + torch.compile (transformers' own path; compile time printed).

If llama-cpp-python is installed, llama.cpp decodes the same GGUF and our ratio to it is printed.
Figures and ratios from one run; no pass/fail.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CODE = '''def parse_config(path):
    """Read a config file and return a dict of settings."""
    settings = {}
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    return settings
'''
QUOTE = (
    "The lighthouse stood on a rock at the edge of the bay. Every night the keeper climbed the spiral "
    "stairs, trimmed the wick, and watched the beam sweep across the water. Ships passed safely because "
    "of him, though few of their sailors ever knew his name. In winter the storms came, and he stayed."
)
TASKS = {
    "story": "Write a long story about a lighthouse keeper who finds a map.",
    "code-edit": f"Here is a Python function:\n\n{CODE}\nAdd type hints to it. Reply with the whole function.",
    "quote": f"Repeat this text exactly, word for word:\n\n{QUOTE}",
}
NEW_TOKENS = 160


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, StaticCache
    from transformers.generation.configuration_utils import CompileConfig

    from tui.engine.sources import converted_gguf_dir, default_gguf_path
    from tui.engine.torch_parts import growing_cache, use_adaptive_prompt_lookup

    path = converted_gguf_dir(default_gguf_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    plain = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ours = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    use_adaptive_prompt_lookup(ours)
    draft = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def prompt_ids(text: str):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )["input_ids"]

    def run(model, ids, n: int, **kwargs) -> tuple[float, list[int]]:
        kwargs = {k: (v() if callable(v) and k == "cache" else v) for k, v in kwargs.items()}
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=n,
                do_sample=False,
                pad_token_id=tokenizer.eos_token_id,
                **kwargs,
            )
        return time.perf_counter() - started, out[0, ids.shape[1] :].tolist()

    def rate(model, ids, **kwargs) -> tuple[float, list[int]]:
        t_one, _ = run(model, ids, 1, **kwargs)
        t_all, tokens = run(model, ids, NEW_TOKENS, **kwargs)
        return (len(tokens) - 1) / max(t_all - t_one, 1e-9), tokens

    compile_config = CompileConfig(fullgraph=False, mode="default")
    compile_config._compile_all_devices = True  # transformers compiles only on GPUs unless told
    options = {
        "chatui default (growing KV cache)": (ours, {"cache": lambda: growing_cache(ours)}),
        "adaptive prompt lookup (chatui)": (
            ours,
            {"cache": lambda: growing_cache(ours), "prompt_lookup_num_tokens": 10},
        ),
        "prompt lookup (transformers)": (plain, {"prompt_lookup_num_tokens": 10}),
        "assisted, draft = the same 135M": (plain, {"assistant_model": draft}),
        "static cache + torch.compile": (
            plain,
            {"cache": lambda: StaticCache(config=plain.config, max_cache_len=1024), "compile_config": compile_config},
        ),
    }
    run(plain, prompt_ids("Hi"), 4)  # warm-up
    started = time.perf_counter()
    model, kwargs = options["static cache + torch.compile"]
    run(model, prompt_ids("Hi"), 4, **kwargs)  # the first call compiles
    print(f"static cache + torch.compile: first call (compiling) {time.perf_counter() - started:.1f} s", flush=True)
    best = (0.0, "")
    for task, text in TASKS.items():
        ids = prompt_ids(text)
        bare, bare_tokens = rate(plain, ids)
        print(f"speed task={task} bare_generate_tok_s={bare:.2f} tokens={len(bare_tokens)}", flush=True)
        for name, (model, kwargs) in options.items():
            tok_s, tokens = rate(model, ids, **kwargs)
            ratio = tok_s / bare
            if ratio > best[0]:
                best = (ratio, f"{name} on {task}")
            print(
                f"speed task={task} option={name!r} tok_s={tok_s:.2f} ratio={ratio:.2f} "
                f"same_greedy_text={tokens == bare_tokens}",
                flush=True,
            )
    print(f"speed best option: {best[1]} ratio={best[0]:.2f} (goal: best >= 2x)", flush=True)
    llama_cpp_line()


def llama_cpp_line() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        print("llama.cpp comparison skipped: llama-cpp-python is not installed", flush=True)
        return
    from llama_cpp import Llama

    from tui.engine import Engine, GenerationSettings, LoadSettings
    from tui.engine.sources import default_gguf_path

    llm = Llama(model_path=str(default_gguf_path()), n_ctx=2048, verbose=False)
    messages = [{"role": "user", "content": TASKS["story"]}]
    llm.create_chat_completion(messages, max_tokens=4, temperature=0)
    first = None
    count = 0
    for _chunk in llm.create_chat_completion(messages, max_tokens=NEW_TOKENS, temperature=0, stream=True):
        count += 1
        if first is None:
            first = time.perf_counter()
    llama = (count - 1) / (time.perf_counter() - first)
    engine = Engine()
    engine.load(LoadSettings()).result()
    final = engine.generate(
        messages, GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": NEW_TOKENS})
    ).wait()
    engine.close()
    ours = final.metrics.decode_tok_s
    print(f"llama.cpp tok_s={llama:.2f} chatui tok_s={ours:.2f} ratio={ours / llama:.2f} (goal >= 0.5)", flush=True)


if __name__ == "__main__":
    main()
