"""Engine streaming vs bare `model.generate`: decode tokens/s and their ratio, fp32 and bf16.

Each measurement runs in its own fresh process (so one measurement's threads cannot slow the
next), on the default SmolLM2-135M-Instruct, greedy, the same story prompt, medians of
`--repeats` runs after a warm-up. Prints figures and ratios; no pass/fail.

  bare:   plain transformers: `model.generate` called on the main thread, no streamer, the
          model's own nn.Linear layers; decode rate = (n - 1) / (time for n tokens - time for 1)
  engine: chatui's Engine (torch thread + streamer + events consumed by the main thread, linear
          layers packed for oneDNN); decode rate from the first to the last streamed token
  token probabilities: the engine recording each token's top 10 before and after the sampling
          filters (the token view, --logprobs); the issue-20 goal is a cost <= 15% of decode speed
  app:    the whole app, headless, streaming the reply into the chat pane, in fp32 (the CPU
          default before `auto` meant the checkpoint's dtype) and bf16 (auto on a CPU with bf16
          instructions): the issue-16 goals are app_bf16 >= 1.7 x the app's fp32 before (measured
          here with packing turned off) and >= 0.95 x bare bf16
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper who finds a map."}]


def measure_bare(dtype: str, new_tokens: int, repeats: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui.engine.sources import converted_gguf_dir, default_gguf_path

    path = converted_gguf_dir(default_gguf_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
    ids = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)

    def run(n: int) -> tuple[float, int]:
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=n, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        return time.perf_counter() - started, out.shape[1] - ids["input_ids"].shape[1]

    run(8)  # warm-up
    rates = []
    for _ in range(repeats):
        t_one, _ = run(1)
        t_all, n = run(new_tokens)
        rates.append((n - 1) / (t_all - t_one))
    return {"decode_tok_s": statistics.median(rates), "tokens": n}


def measure_engine(dtype: str, new_tokens: int, repeats: int, logprobs: int = 0) -> dict:
    from tui.engine import Engine, GenerationSettings, LoadSettings

    engine = Engine(reuse_cache=False)
    engine.load(LoadSettings(dtype=dtype)).result()
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": new_tokens})
    engine.generate(PROMPT, settings.with_updates({"max_new_tokens": 8})).wait()  # warm-up
    rates, ttfts = [], []
    for _ in range(repeats):
        final = engine.generate(PROMPT, settings, logprobs=logprobs).wait()
        rates.append(final.metrics.decode_tok_s)
        ttfts.append(final.metrics.ttft_s)
    engine.close()
    return {
        "decode_tok_s": statistics.median(rates),
        "ttft_s": statistics.median(ttfts),
        "tokens": final.metrics.new_tokens,
    }


def measure_app(dtype: str, new_tokens: int, repeats: int) -> dict:
    """The real app, headless (Textual's run_test), streaming the reply into the chat pane."""
    import asyncio
    import tempfile
    from pathlib import Path

    from tui.cli.main import parse_args
    from tui.store import AutoSaver, Library
    from tui.store.config import Config
    from tui.ui.app import ChatApp

    async def scenario() -> dict:
        tmp = Path(tempfile.mkdtemp())
        app = ChatApp(
            parse_args(["--dtype", dtype, "do_sample=false", f"max_new_tokens={new_tokens}"]),
            Config(path=tmp / "config.toml"),
            saver=AutoSaver(Library(tmp / "library.sqlite3")),
        )
        rates = []
        async with app.run_test(size=(120, 40)) as pilot:
            chat = app.chat_screen

            async def reply(text: str) -> dict:
                while chat.state != "ready":
                    await asyncio.sleep(0.05)
                await chat.action_new_chat()
                while chat.messages:  # the new conversation is in place
                    await pilot.pause(0.05)
                await pilot.pause(0.2)
                for _attempt in range(20):
                    chat.prompt_input.load_text(text)
                    chat.prompt_input.focus()
                    await pilot.press("enter")
                    for _ in range(100):
                        if chat.state == "generating" or chat.messages:
                            break
                        await asyncio.sleep(0.01)
                    if chat.state == "generating" or chat.messages:
                        break
                else:
                    raise SystemExit("the app did not start a reply")
                while chat.state != "ready":
                    await asyncio.sleep(0.05)
                return chat.messages[-1].meta.metrics

            await reply("Hi")  # warm-up
            for _ in range(repeats):
                metrics = await reply(PROMPT[0]["content"])
                rates.append(metrics.decode_tok_s)
        return {"decode_tok_s": statistics.median(rates), "tokens": metrics.new_tokens}

    return asyncio.run(scenario())


def measure_engine_logprobs(dtype: str, new_tokens: int, repeats: int) -> dict:
    """The engine recording token probabilities (top 10 before and after the filters), as the
    token view and --logprobs do."""
    return measure_engine(dtype, new_tokens, repeats, logprobs=10)


def measure_app_unpacked(dtype: str, new_tokens: int, repeats: int) -> dict:
    """The app as it ran before packed linear layers: plain nn.Linear weights."""
    import tui.engine.loading

    tui.engine.loading.can_pack = lambda device, dtype: False
    return measure_app(dtype, new_tokens, repeats)


def in_subprocess(mode: str, dtype: str, new_tokens: int, repeats: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--dtype",
            dtype,
            "--tokens",
            str(new_tokens),
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["bare", "engine", "engine-logprobs", "app", "app-unpacked"])
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.child:
        fn = {
            "bare": measure_bare,
            "engine": measure_engine,
            "engine-logprobs": measure_engine_logprobs,
            "app": measure_app,
            "app-unpacked": measure_app_unpacked,
        }[args.child]
        print(json.dumps(fn(args.dtype, args.tokens, args.repeats)))
        return
    app_rates = {}
    for dtype in [args.dtype] if args.dtype else ["float32", "bfloat16"]:
        # Alternate the three, a fresh process each, so slow drifts of a shared machine hit all.
        bares, engines, recording, apps = [], [], [], []
        for _ in range(args.rounds):
            bares.append(in_subprocess("bare", dtype, args.tokens, args.repeats))
            engines.append(in_subprocess("engine", dtype, args.tokens, args.repeats))
            recording.append(in_subprocess("engine-logprobs", dtype, args.tokens, args.repeats))
            apps.append(in_subprocess("app", dtype, args.tokens, args.repeats))
        bare = statistics.median(b["decode_tok_s"] for b in bares)
        engine = statistics.median(e["decode_tok_s"] for e in engines)
        ttft = statistics.median(e["ttft_s"] for e in engines)
        print(
            f"engine-vs-bare dtype={dtype} tokens={engines[0]['tokens']} rounds={args.rounds} bare_tok_s={bare:.2f} "
            f"engine_tok_s={engine:.2f} ratio={engine / bare:.3f} (goal >= 0.97) engine_ttft_ms={ttft * 1000:.0f}",
            flush=True,
        )
        with_probs = statistics.median(r["decode_tok_s"] for r in recording)
        print(
            f"token-probabilities dtype={dtype} engine_tok_s={engine:.2f} recording_top10_tok_s={with_probs:.2f} "
            f"cost={1 - with_probs / engine:.1%} (goal <= 15%)",
            flush=True,
        )
        app = app_rates[dtype] = statistics.median(a["decode_tok_s"] for a in apps)
        print(
            f"in-app-vs-bare dtype={dtype} tokens={apps[0]['tokens']} rounds={args.rounds} bare_tok_s={bare:.2f} "
            f"app_tok_s={app:.2f} ratio={app / bare:.3f} (goal >= 0.95; streamed into the chat pane)",
            flush=True,
        )
    if len(app_rates) == 2:
        # The app's fp32 path before issue 16 (no packed linear layers), in its own processes.
        before = statistics.median(
            in_subprocess("app-unpacked", "float32", args.tokens, args.repeats)["decode_tok_s"]
            for _ in range(args.rounds)
        )
        print(f"app fp32 unpacked (the path before) = {before:.2f} tok/s", flush=True)
        print(
            f"app bf16 / app fp32 unpacked = {app_rates['bfloat16'] / before:.2f} x (goal >= 1.7); "
            f"app bf16 / app fp32 packed = {app_rates['bfloat16'] / app_rates['float32']:.2f} x",
            flush=True,
        )


if __name__ == "__main__":
    main()
