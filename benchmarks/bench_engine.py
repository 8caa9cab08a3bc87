"""Engine streaming vs bare `model.generate`: decode tokens/s and their ratio, fp32 and bf16.

Each measurement runs in its own fresh process (so one measurement's threads cannot slow the
next), on the default SmolLM2-135M-Instruct, greedy, the same story prompt, medians of
`--repeats` runs after a warm-up. Prints figures and ratios; no pass/fail.

  bare:   `model.generate` called on the main thread, no streamer; decode rate =
          (n - 1) / (time for n tokens - time for 1 token)
  engine: chatui's Engine (torch thread + streamer + events consumed by the main thread);
          decode rate from the first to the last streamed token
  app:    the whole app, headless, streaming the reply into the chat pane (fp32, the CPU default)
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


def measure_engine(dtype: str, new_tokens: int, repeats: int) -> dict:
    from tui.engine import Engine, GenerationSettings, LoadSettings

    engine = Engine(reuse_cache=False)
    engine.load(LoadSettings(dtype=dtype)).result()
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": new_tokens})
    engine.generate(PROMPT, settings.with_updates({"max_new_tokens": 8})).wait()  # warm-up
    rates, ttfts = [], []
    for _ in range(repeats):
        final = engine.generate(PROMPT, settings).wait()
        rates.append(final.metrics.decode_tok_s)
        ttfts.append(final.metrics.ttft_s)
    engine.shutdown()
    return {"decode_tok_s": statistics.median(rates), "ttft_s": statistics.median(ttfts),
            "tokens": final.metrics.new_tokens}


def measure_app(dtype: str, new_tokens: int, repeats: int) -> dict:
    """The real app, headless (Textual's run_test), streaming the reply into the chat pane."""
    import asyncio
    import tempfile
    from pathlib import Path

    from tui.app import ChatApp
    from tui.cli import parse_args
    from tui.store import AutoSaver, Library
    from tui.store.config import Config

    async def scenario() -> dict:
        tmp = Path(tempfile.mkdtemp())
        app = ChatApp(parse_args(["--dtype", dtype, "do_sample=false", f"max_new_tokens={new_tokens}"]),
                      Config(path=tmp / "config.toml"), saver=AutoSaver(Library(tmp / "library.sqlite3")))
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
                return chat.messages[-1].stats

            await reply("Hi")  # warm-up
            for _ in range(repeats):
                stats = await reply(PROMPT[0]["content"])
                rates.append(stats["decode_tok_s"])
        return {"decode_tok_s": statistics.median(rates), "tokens": stats["new_tokens"]}

    return asyncio.run(scenario())


def in_subprocess(mode: str, dtype: str, new_tokens: int, repeats: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--dtype", dtype, "--tokens", str(new_tokens),
         "--repeats", str(repeats)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=["bare", "engine", "app"])
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.child:
        fn = {"bare": measure_bare, "engine": measure_engine, "app": measure_app}[args.child]
        print(json.dumps(fn(args.dtype, args.tokens, args.repeats)))
        return
    for dtype in ([args.dtype] if args.dtype else ["float32", "bfloat16"]):
        # Alternate the two, a fresh process each, so slow drifts of a shared machine hit both.
        bares, engines, apps = [], [], []
        for _ in range(args.rounds):
            bares.append(in_subprocess("bare", dtype, args.tokens, args.repeats))
            engines.append(in_subprocess("engine", dtype, args.tokens, args.repeats))
            if dtype == "float32":  # the app's default dtype on CPU
                apps.append(in_subprocess("app", dtype, args.tokens, args.repeats))
        bare = statistics.median(b["decode_tok_s"] for b in bares)
        engine = statistics.median(e["decode_tok_s"] for e in engines)
        ttft = statistics.median(e["ttft_s"] for e in engines)
        print(
            f"engine-vs-bare dtype={dtype} tokens={engines[0]['tokens']} rounds={args.rounds} bare_tok_s={bare:.2f} "
            f"engine_tok_s={engine:.2f} ratio={engine / bare:.3f} (goal >= 0.97) engine_ttft_ms={ttft * 1000:.0f}",
            flush=True,
        )
        if apps:
            app = statistics.median(a["decode_tok_s"] for a in apps)
            print(f"in-app-vs-bare dtype={dtype} tokens={apps[0]['tokens']} rounds={args.rounds} bare_tok_s={bare:.2f} "
                  f"app_tok_s={app:.2f} ratio={app / bare:.3f} (goal >= 0.97; streamed into the chat pane)",
                  flush=True)


if __name__ == "__main__":
    main()
