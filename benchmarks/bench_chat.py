"""A long chat on the default SmolLM2-135M (greedy, the default dtype): TTFT over 20 turns, and
decode speed at long context. Figures and ratios from one run; no pass/fail.

- ttft: a scripted 20-turn chat (~100-token user messages, 60-token replies), with the engine's
  KV cache reuse (the default; per-turn median of 3 chats) and without it (one chat); TTFT at
  turns 1, 10 and 20 and turn 20 / turn 1.
  A third run does what the app does while the user types: when they pause (here: with all but
  the last sentence of the message typed) the conversation and the draft are prefilled
  (`Engine.prefill`); TTFT is then timed from Enter as before.
- long-context decode: decode tok/s of a 64-token reply after a ~100-token and a ~4,000-token
  prompt, and their ratio; with chatui's in-place growing KV cache and CPU GQA attention, and
  with what bare `generate` uses (transformers' DynamicCache and SDPA).
- dtype at every turn: the same 20-turn chat and the ~4,000-token decode in fp32 and in bf16, each
  in its own process; TTFT and decode tok/s per turn and bf16/fp32 at each, so `--dtype auto`
  (bf16 on a CPU with bf16 instructions) is shown to be the faster at every turn, or not.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui.engine import Engine, Failed, GenerationSettings, LoadSettings  # noqa: E402

REPEATS = 3  # chats with KV reuse per variant; TTFTs are per-turn medians

TOPICS = ["lighthouses", "bread", "rivers", "chess", "volcanoes", "bees", "trains", "glaciers", "jazz", "owls"]


def user_message(turn: int) -> str:
    topic = TOPICS[turn % len(TOPICS)]
    return (
        f"Turn {turn}. Tell me something interesting about {topic}. I am asking because I read an article "
        f"about {topic} last week and it made me curious about their history, how people study them today, "
        f"and what surprising facts most people do not know. Please keep it short and friendly, and mention "
        f"one thing about {topic} that connects to everyday life, so I can tell my friends about it later."
    )


def chat_ttfts(
    engine: Engine, turns: int, reuse: bool, typed_ahead: bool = False, decode_rates: list[float] | None = None
) -> list[float]:
    engine.turn_cache.reuse = reuse
    engine.turn_cache.drop()
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 60})
    messages, ttfts = [], []
    for turn in range(1, turns + 1):
        text = user_message(turn)
        if typed_ahead:  # the user paused before typing the last sentence
            draft = text[: text.rindex(". ") + 1]
            engine.prefill(messages + [{"role": "user", "content": draft}], settings).result()
        messages.append({"role": "user", "content": text})
        final = engine.generate(messages, settings).wait()
        if isinstance(final, Failed):
            raise SystemExit(final.error)
        ttfts.append(final.metrics.ttft_s)
        if decode_rates is not None:
            decode_rates.append(final.metrics.decode_tok_s)
        messages.append({"role": "assistant", "content": final.text})
    context = final.metrics.prompt_tokens + final.metrics.new_tokens
    name = ("reuse + typed ahead" if typed_ahead else "reuse") if reuse else "no reuse"
    print(f"  ({name}: {turns} turns, final context {context} tokens)", flush=True)
    return ttfts


def decode_rate(engine: Engine, filler_words: int) -> tuple[float, int]:
    engine.turn_cache.drop()
    text = " ".join(f"{TOPICS[i % len(TOPICS)]}" for i in range(filler_words))
    messages = [{"role": "user", "content": f"Here are some words: {text}. Now write a short poem about the sea."}]
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 64})
    rates = []
    for _ in range(2):
        final = engine.generate(messages, settings).wait()
        rates.append(final.metrics.decode_tok_s)
        engine.turn_cache.drop()
    return statistics.median(rates), final.metrics.prompt_tokens


def dtype_chat(dtype: str) -> dict:
    """One dtype's 20-turn chat (KV reuse, as the app runs) and its ~4,000-token decode."""
    engine = Engine()
    engine.load(LoadSettings(dtype=dtype)).result()
    engine.generate(
        [{"role": "user", "content": "Hi"}], GenerationSettings().with_updates({"max_new_tokens": 4})
    ).wait()  # warm-up
    decode: list[float] = []
    ttft = chat_ttfts(engine, 20, True, decode_rates=decode)
    long, long_ctx = decode_rate(engine, 2830)
    engine.close()
    return {"ttft": ttft, "decode": decode, "long": long, "long_ctx": long_ctx}


def compare_dtypes() -> None:
    figures = {}
    for dtype in ("float32", "bfloat16"):
        out = subprocess.run([sys.executable, __file__, "--dtype-chat", dtype], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"dtype {dtype}: failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
            return
        figures[dtype] = json.loads(out.stdout.strip().splitlines()[-1])
    fp32, bf16 = figures["float32"], figures["bfloat16"]
    print("dtype per turn (20-turn chat, KV reuse): turn  ttft fp32/bf16 s  decode fp32/bf16 tok/s  bf16/fp32 speed")
    for turn in (1, 2, 5, 10, 15, 20):
        i = turn - 1
        print(
            f"  turn {turn:2}  {fp32['ttft'][i]:.3f}/{bf16['ttft'][i]:.3f}  {fp32['decode'][i]:5.1f}/"
            f"{bf16['decode'][i]:5.1f}  ttft {fp32['ttft'][i] / bf16['ttft'][i]:.2f}x decode "
            f"{bf16['decode'][i] / fp32['decode'][i]:.2f}x",
            flush=True,
        )
    ttft_wins = sum(b <= f for f, b in zip(fp32["ttft"], bf16["ttft"], strict=True))
    decode_wins = sum(b >= f for f, b in zip(fp32["decode"], bf16["decode"], strict=True))
    print(
        f"dtype bf16 faster: ttft at {ttft_wins}/20 turns, decode at {decode_wins}/20 turns; "
        f"decode at ctx={bf16['long_ctx']}: fp32 {fp32['long']:.2f} bf16 {bf16['long']:.2f} tok/s "
        f"bf16/fp32={bf16['long'] / fp32['long']:.2f}x",
        flush=True,
    )


def main() -> None:
    if sys.argv[1:2] == ["--dtype-chat"]:
        print(json.dumps(dtype_chat(sys.argv[2])))
        return
    engine = Engine()
    engine.load(LoadSettings()).result()
    engine.generate(
        [{"role": "user", "content": "Hi"}], GenerationSettings().with_updates({"max_new_tokens": 4})
    ).wait()  # warm-up
    # One TTFT is a single prefill of ~100 tokens, noisy here by +-30%: the chats with KV reuse
    # (quick) are played 3 times, interleaved, and each turn's median is used.
    runs: dict[bool, list[list[float]]] = {False: [], True: []}
    for _ in range(REPEATS):
        for typed_ahead in (False, True):
            runs[typed_ahead].append(chat_ttfts(engine, 20, True, typed_ahead=typed_ahead))
    reuse, ahead = ([statistics.median(turn) for turn in zip(*runs[flag], strict=True)] for flag in (False, True))
    plain = chat_ttfts(engine, 20, False)
    for name, values in (("kv-reuse", reuse), ("re-encode", plain), ("kv-reuse+typed-ahead", ahead)):
        print(
            f"ttft {name} turn1_s={values[0]:.2f} turn10_s={values[9]:.2f} turn20_s={values[19]:.2f} "
            f"turn20/turn1={values[19] / values[0]:.2f} (goal <= 1.3)",
            flush=True,
        )
    print(f"ttft turn20 re-encode/kv-reuse={plain[19] / reuse[19]:.1f}x", flush=True)
    engine.turn_cache.reuse = True
    model = engine.loaded.model
    ours = model.config._attn_implementation
    for chatui in (True, False):  # the baseline is plain transformers: DynamicCache, its own SDPA
        engine.turn_cache.grow_in_place = chatui
        model.set_attn_implementation(ours if chatui else "sdpa")
        short, short_ctx = decode_rate(engine, 40)
        long, long_ctx = decode_rate(engine, 2830)  # ~4,000 tokens with the chat template
        name = "chatui (growing cache, CPU GQA attention)" if chatui else "transformers (DynamicCache, sdpa)"
        print(
            f"long-context decode {name}: ctx={short_ctx} tok_s={short:.2f} ctx={long_ctx} tok_s={long:.2f} "
            f"ratio={long / short:.2f} (goal >= 0.8)",
            flush=True,
        )
    engine.turn_cache.grow_in_place = True
    engine.close()
    compare_dtypes()


if __name__ == "__main__":
    main()
