"""Speed at the sizes people chat with: random-weight models with the exact configs of
SmolLM2-1.7B-Instruct and Qwen2.5-1.5B-Instruct (speed does not depend on weight values), with the
SmolLM2 tokenizer, built once and cached in chatui's cache folder.

For each model, each setup (fp32, bf16, torchao int4 quantized at load, int4 from its cache,
bnb-4bit) runs in a process of its own
through chatui's engine: load time, RSS, TTFT and decode tok/s for a 64-token prompt and 64 new
tokens (greedy). Then, at the default dtype: bare `generate` and the whole app streaming into its
chat pane; a llama.cpp line on the same weights (Q4_0, converted with llama.cpp's own script,
when llama-cpp-python is installed: `pip install .[bench]`); and the physical limit, measured
memory bandwidth / bytes read per token. Figures and ratios from one run; no pass/fail.

    python benchmarks/bench_sizes.py [--models smollm2-1.7b,qwen2.5-1.5b] [--setups fp32,bf16,int4,int4-cached,bnb-4bit]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIGS = {
    "smollm2-1.7b": {  # HuggingFaceTB/SmolLM2-1.7B-Instruct
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_hidden_layers": 24,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 49152,
        "max_position_embeddings": 8192,
        "rope_theta": 130000,
        "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
        "hidden_act": "silu",
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
    },
    "qwen2.5-1.5b": {  # Qwen/Qwen2.5-1.5B-Instruct
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "max_position_embeddings": 32768,
        "rope_theta": 1000000.0,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
        "hidden_act": "silu",
        "use_sliding_window": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
    },
}
# int4 quantizes (its cached weights removed first); int4-cached is the next load, from the cache;
# int4-torchao is int4 on torchao's kernel (CHATUI_INT4_KERNEL=torchao), what int4 ran on before;
# the -compiled setups load with --compile (static cache + torch.compile) and time replies once it is
# compiled (the compile's seconds are reported as compile_s).
SETUPS = {
    "fp32": ("float32", "none"),
    "bf16": ("bfloat16", "none"),
    "int4": ("auto", "int4"),
    "int4-cached": ("auto", "int4"),
    "int4-torchao": ("auto", "int4"),
    "bf16-compiled": ("bfloat16", "none"),
    "int4-compiled": ("auto", "int4"),
    "bnb-4bit": ("auto", "bnb-4bit"),
}
PROMPT_TOKENS, NEW_TOKENS = 64, 64


def model_dir(name: str) -> Path:
    from tui.paths import cache_dir

    return cache_dir() / "bench-models" / name


def build(name: str) -> Path:
    """The random-weight model `name`, built and saved once (bf16 safetensors)."""
    folder = model_dir(name)
    if (folder / "model.safetensors").exists() or (folder / "model.safetensors.index.json").exists():
        return folder
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from tui.engine.sources import converted_gguf_dir, default_gguf_path

    print(f"building {name} (random weights, once)...", flush=True)
    config = AutoConfig.for_model(**CONFIGS[name])
    torch.manual_seed(0)
    with torch.device("cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(converted_gguf_dir(default_gguf_path())).save_pretrained(folder)
    return folder


def prompt_messages() -> list[dict[str, str]]:
    words = "Tell me about the history of lighthouses and the people who kept them lit through the long nights. " * 6
    return [{"role": "user", "content": words}]


# -- one setup, in a process of its own --------------------------------------------------------------


def run_one(name: str, setup: str) -> dict:
    import psutil

    from tui.engine import Engine, GenerationSettings, LoadSettings

    dtype, quantization = SETUPS[setup]
    if setup == "int4-torchao":
        os.environ["CHATUI_INT4_KERNEL"] = "torchao"
    if setup == "int4":
        from tui.engine import int4_cache
        from tui.engine.hardware import pick_dtype
        from tui.engine.quantization import INT4_GROUP_SIZE, int4_backend, packed_format

        kind = packed_format(int4_backend()[0])
        path = int4_cache.cache_file(str(model_dir(name)), pick_dtype(dtype, "cpu", "bfloat16"), INT4_GROUP_SIZE, kind)
        if path is not None:
            path.unlink(missing_ok=True)
    engine = Engine()
    started = time.perf_counter()
    compiled = setup.endswith("-compiled")
    info = engine.load(
        LoadSettings(model=str(model_dir(name)), dtype=dtype, quantization=quantization, compile=compiled)
    ).result()
    load_s = time.perf_counter() - started
    compile_s = 0.0
    if compiled and engine.compile is not None:
        state = engine.compile.done.result()
        compile_s = time.perf_counter() - started - load_s
        if state != "ready":
            raise RuntimeError(engine.compile.error)
    new = 8 if quantization.startswith("bnb") else NEW_TOKENS  # bitsandbytes is slow on CPU
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": new, "min_new_tokens": new})
    messages = prompt_messages()
    rates, ttfts = [], []
    for _ in range(1 if quantization.startswith("bnb") else 2):
        engine.turn_cache.drop()
        final = engine.generate(messages, settings).wait()
        rates.append(final.metrics.decode_tok_s)
        ttfts.append(final.metrics.ttft_s)
    weights = weight_bytes(engine.loaded.model)
    engine.close()
    return {
        "dtype": info.dtype,
        "quantization": info.quantization,
        "load_s": load_s,
        "compile_s": compile_s,
        "rss_mb": psutil.Process().memory_info().rss / 2**20,
        "ttft_s": min(ttfts),
        "decode_tok_s": max(rates),
        "prompt_tokens": final.metrics.prompt_tokens,
        "bytes_per_token": weights,
    }


def weight_bytes(model) -> int:
    """Bytes of weights read for one new token: every weight (packed, int4 or plain, each storage
    once) but the input embedding, of which one row is read, unless the output layer reads it."""
    from tui.engine.quantization import weight_bytes as stored_bytes

    embedding = model.get_input_embeddings().weight
    head = getattr(model.get_output_embeddings(), "weight", None)
    head_reads_embedding = (
        type(head).__name__ in ("Parameter", "Tensor")
        and not head.is_mkldnn
        and head.untyped_storage().data_ptr() == embedding.untyped_storage().data_ptr()
    )
    total = stored_bytes(model)
    return total if head_reads_embedding else total - embedding.numel() * embedding.element_size()


def run_bare(name: str) -> dict:
    """Bare `generate` at chatui's default dtype: what transformers alone reaches."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui.engine.hardware import pick_dtype

    dtype = getattr(torch, pick_dtype("auto", "cpu", "bfloat16"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir(name))
    model = AutoModelForCausalLM.from_pretrained(model_dir(name), dtype=dtype).eval()
    ids = tokenizer.apply_chat_template(
        prompt_messages(), add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]

    def timed(new: int) -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new,
                min_new_tokens=new,
                do_sample=False,
                pad_token_id=0,
            )
        return time.perf_counter() - started

    timed(2)
    one = min(timed(1) for _ in range(2))
    whole = min(timed(NEW_TOKENS) for _ in range(2))
    return {"ttft_s": one, "decode_tok_s": (NEW_TOKENS - 1) / (whole - one)}


def run_app(name: str) -> dict:
    """The whole app (headless Textual), streaming a reply into its chat pane, at the default dtype."""
    import asyncio
    import tempfile

    from tui.cli.main import parse_args
    from tui.store import AutoSaver, Library
    from tui.store.config import Config
    from tui.ui.app import ChatApp

    async def scenario() -> dict:
        tmp = Path(tempfile.mkdtemp())
        options = parse_args(
            [str(model_dir(name)), "do_sample=false", f"max_new_tokens={NEW_TOKENS}", f"min_new_tokens={NEW_TOKENS}"]
        )
        app = ChatApp(options, Config(path=tmp / "config.toml"), saver=AutoSaver(Library(tmp / "library.sqlite3")))
        rates = []
        async with app.run_test(size=(120, 40)) as pilot:
            chat = app.chat_screen
            for attempt in range(3):
                while chat.state != "ready":
                    await asyncio.sleep(0.05)
                await chat.action_new_chat()
                chat.prompt_input.load_text(prompt_messages()[0]["content"])
                await pilot.press("enter")
                while chat.state != "generating":
                    await asyncio.sleep(0.01)
                while chat.state != "ready":
                    await asyncio.sleep(0.05)
                if attempt:  # the first is a warm-up
                    rates.append(chat.messages[-1].meta.metrics.decode_tok_s)
        return {"decode_tok_s": max(rates)}

    return asyncio.run(scenario())


def memory_bandwidth() -> float:
    """Bytes per second read by torch summing 1 GiB of random fp32 (all cores)."""
    import torch

    data = torch.rand(2**28)
    data.sum()
    started = time.perf_counter()
    for _ in range(5):
        data.sum()
    return 5 * data.numel() * 4 / (time.perf_counter() - started)


# -- llama.cpp on the same weights ----------------------------------------------------------------


def llama_cpp(name: str) -> dict | None:
    """llama.cpp's decode on the same random weights as Q4_0, or None when llama-cpp-python (and its
    sdist's convert script) are not here."""
    try:
        import llama_cpp
    except ImportError:
        return None
    gguf = model_dir(name) / "model-Q4_0.gguf"
    if not gguf.exists():
        script = convert_script(llama_cpp.__version__)
        if script is None:
            return None
        full = model_dir(name) / "model-bf16.gguf"
        subprocess.run(
            [sys.executable, str(script), str(model_dir(name)), "--outtype", "bf16", "--outfile", str(full)],
            check=True,
            capture_output=True,
        )
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
        llama_cpp.llama_model_quantize(str(full).encode(), str(gguf).encode(), params)
        full.unlink()
    model = llama_cpp.Llama(model_path=str(gguf), n_threads=os.cpu_count() or 2, n_ctx=512, verbose=False)
    tokens = model.tokenize(b" lighthouse" * PROMPT_TOKENS)[:PROMPT_TOKENS]
    rates = []
    for _ in range(3):
        model.reset()
        started = time.perf_counter()
        model.eval(tokens)
        prefill = time.perf_counter() - started
        token, started = tokens[-1], time.perf_counter()
        for _ in range(NEW_TOKENS):
            model.eval([token])
            token = int(model.scores[model.n_tokens - 1].argmax())
        rates.append(NEW_TOKENS / (time.perf_counter() - started))
    return {"decode_tok_s": statistics.median(rates), "prefill_s": prefill, "file_mb": gguf.stat().st_size / 2**20}


def convert_script(version: str) -> Path | None:
    """llama.cpp's convert_hf_to_gguf.py from the llama-cpp-python sdist of this version (fetched
    from PyPI into the cache once)."""
    from tui.paths import cache_dir

    folder = cache_dir() / "bench-models" / f"llama-cpp-python-{version}"
    script = next(folder.glob("*/vendor/llama.cpp/convert_hf_to_gguf.py"), None) if folder.exists() else None
    if script is None:
        folder.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"llama-cpp-python=={version}",
                "-d",
                str(folder),
            ],
            capture_output=True,
        )
        archives = list(folder.glob("*.tar.gz"))
        if fetched.returncode or not archives:
            return None
        subprocess.run(["tar", "-xzf", str(archives[0]), "-C", str(folder)], check=True)
        script = next(folder.glob("*/vendor/llama.cpp/convert_hf_to_gguf.py"), None)
    return script


# -- orchestration -----------------------------------------------------------------------------------


def in_process(*args: str) -> dict | None:
    result = subprocess.run(
        [sys.executable, __file__, "--one", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        print(f"  {' '.join(args)}: failed: {(result.stderr.strip().splitlines() or ['?'])[-1][:200]}", flush=True)
        return None
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=",".join(CONFIGS))
    parser.add_argument("--setups", default=",".join(SETUPS))
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "SETUP"))
    args = parser.parse_args()
    if args.one:
        name, setup = args.one
        kind = {"bare": run_bare, "app": run_app, "llama.cpp": llama_cpp, "bandwidth": None}
        if setup == "bandwidth":
            print(json.dumps({"bytes_per_s": memory_bandwidth()}))
        else:
            print(json.dumps(kind[setup](name) if setup in kind else run_one(name, setup)))
        return
    from tui.engine.hardware import pick_dtype

    default = {"float32": "fp32", "bfloat16": "bf16"}[pick_dtype("auto", "cpu", "bfloat16")]
    bandwidth = (in_process("-", "bandwidth") or {}).get("bytes_per_s", 0)
    print(
        f"memory bandwidth: {bandwidth / 1e9:.1f} GB/s (torch sum over 1 GiB of fp32); default dtype here: {default}",
        flush=True,
    )
    for name in args.models.split(","):
        build(name)
        print(f"== {name} (random weights, {PROMPT_TOKENS}-token prompt, {NEW_TOKENS} greedy tokens)", flush=True)
        figures = {}
        for setup in args.setups.split(","):
            result = in_process(name, setup)
            if result is None:
                continue
            figures[setup] = result
            limit = bandwidth / result["bytes_per_token"] if bandwidth else 0
            share = (
                f"  bandwidth limit {limit:5.1f} tok/s ({result['decode_tok_s'] / limit:4.0%} of it)" if limit else ""
            )
            print(
                f"  {setup:13} decode {result['decode_tok_s']:6.2f} tok/s  TTFT {result['ttft_s']:5.2f} s  "
                f"load {result['load_s']:5.1f} s  RSS {result['rss_mb']:6.0f} MB{share}"
                + (f"  (compiled in {result['compile_s']:.0f} s)" if result.get("compile_s") else ""),
                flush=True,
            )
        bare, app, llama = in_process(name, "bare"), in_process(name, "app"), in_process(name, "llama.cpp")
        if bare:
            print(
                f"  bare generate ({default}): decode {bare['decode_tok_s']:.2f} tok/s, TTFT {bare['ttft_s']:.2f} s",
                flush=True,
            )
        if app and bare:
            print(
                f"  the app, streaming ({default}): decode {app['decode_tok_s']:.2f} tok/s = "
                f"{app['decode_tok_s'] / bare['decode_tok_s']:.2f} x bare generate",
                flush=True,
            )
        if llama:
            print(
                f"  llama.cpp Q4_0 ({llama['file_mb']:.0f} MB): decode {llama['decode_tok_s']:.2f} tok/s, "
                f"prefill {llama['prefill_s']:.2f} s",
                flush=True,
            )
        elif importlib.util.find_spec("llama_cpp") is None:
            print("  llama.cpp: skipped (llama-cpp-python is not installed: pip install .[bench])", flush=True)
        else:
            print("  llama.cpp: no figure (its conversion or run failed, above)", flush=True)
        fp32, int4, dflt = figures.get("fp32"), figures.get("int4"), figures.get(default)
        if fp32 and int4:
            print(f"  ratios: int4 / fp32 = {int4['decode_tok_s'] / fp32['decode_tok_s']:.1f} x", flush=True)
        cached = figures.get("int4-cached")
        if int4 and cached:
            print(
                f"          int4 load: quantizing {int4['load_s']:.1f} s, from the cache {cached['load_s']:.1f} s "
                f"({int4['load_s'] / cached['load_s']:.1f} x faster)",
                flush=True,
            )
        if fp32 and dflt:
            print(
                f"          {default} (default) / fp32 = {dflt['decode_tok_s'] / fp32['decode_tok_s']:.1f} x",
                flush=True,
            )
        if int4 and llama:
            print(f"          int4 / llama.cpp Q4_0 = {int4['decode_tok_s'] / llama['decode_tok_s']:.2f} x", flush=True)
        if llama and bandwidth:
            streamed = llama["file_mb"] * 2**20 * llama["decode_tok_s"]
            share = streamed / bandwidth
            print(f"          llama.cpp streams {streamed / 1e9:.1f} GB/s ({share:.0%} of the bandwidth)")
        torchao, bf16 = figures.get("int4-torchao"), figures.get("bf16")
        if int4 and torchao:
            ratio = int4["decode_tok_s"] / torchao["decode_tok_s"]
            print(f"          int4 (chatui's kernel) / int4 on torchao = {ratio:.2f} x")
        if int4 and bf16:
            print(
                f"          int4 TTFT / bf16 TTFT = {int4['ttft_s'] / bf16['ttft_s']:.2f} x "
                f"({int4['ttft_s']:.2f} s against {bf16['ttft_s']:.2f} s)",
                flush=True,
            )
        for plain in ("bf16", "int4"):
            eager, compiled = figures.get(plain), figures.get(f"{plain}-compiled")
            if eager and compiled:
                print(f"          {plain} compiled / eager = {compiled['decode_tok_s'] / eager['decode_tok_s']:.2f} x")


if __name__ == "__main__":
    main()
