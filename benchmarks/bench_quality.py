"""Quality, shown not assumed: for each dtype and quantization of the real SmolLM2-135M-Instruct,
- the perplexity on a fixed text (public-domain prose below), and
- the share of 200 greedy tokens (a chat-templated request for a story) that agree with fp32,
  counted up to the first difference and over all 200 positions.

int4 is chatui's kernel (blocks of 32, a scale and a minimum each); int4-torchao, the fallback,
is measured at several group sizes: the one it uses (tui.engine.quantization.INT4_GROUP_SIZE) is
chosen from these figures. Quantized rows also say how they compare with bf16. Figures from one run; no pass/fail.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TEXT = """It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of
foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it
was the season of Darkness, it was the spring of hope, it was the winter of despair, we had everything
before us, we had nothing before us, we were all going direct to Heaven, we were all going direct the
other way - in short, the period was so far like the present period, that some of its noisiest
authorities insisted on its being received, for good or for evil, in the superlative degree of
comparison only.

There were a king with a large jaw and a queen with a plain face, on the throne of England; there were
a king with a large jaw and a queen with a fair face, on the throne of France. In both countries it was
clearer than crystal to the lords of the State preserves of loaves and fishes, that things in general
were settled for ever.

The sea was calm to-night. The tide is full, the moon lies fair upon the straits; on the French coast
the light gleams and is gone; the cliffs of England stand, glimmering and vast, out in the tranquil bay.
Come to the window, sweet is the night-air! Only, from the long line of spray where the sea meets the
moon-blanched land, listen! you hear the grating roar of pebbles which the waves draw back, and fling,
at their return, up the high strand, begin, and cease, and then again begin, with tremulous cadence
slow, and bring the eternal note of sadness in.

Call me Ishmael. Some years ago - never mind how long precisely - having little or no money in my purse,
and nothing particular to interest me on shore, I thought I would sail about a little and see the watery
part of the world. It is a way I have of driving off the spleen and regulating the circulation.
Whenever I find myself growing grim about the mouth; whenever it is a damp, drizzly November in my soul;
then, I account it high time to get to sea as soon as I can."""

STORY = [{"role": "user", "content": "Write a short story about a lighthouse keeper who finds a message in a bottle."}]
GREEDY_TOKENS = 200


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")  # bitsandbytes warns at every 8-bit matmul
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tui.engine import quantization
    from tui.engine.sources import converted_gguf_dir, default_gguf_path

    path = converted_gguf_dir(default_gguf_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    text_ids = tokenizer(TEXT, return_tensors="pt")["input_ids"]
    story_ids = tokenizer.apply_chat_template(STORY, add_generation_prompt=True, return_tensors="pt", return_dict=True)[
        "input_ids"
    ]

    def load(dtype: str, quant: str, group: int | None = None):
        if quant.startswith("bnb-"):
            config = quantization.transformers_config(quant, dtype)
            return AutoModelForCausalLM.from_pretrained(
                path, dtype=getattr(torch, dtype), quantization_config=config, device_map={"": "cpu"}
            ).eval()
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).eval()
        if quant == "int4":  # chatui's kernel: blocks of 32 with a scale and a minimum
            quantization.quantize_int4(model, backend="chatui")
        elif quant == "int4-torchao":
            before = quantization.INT4_GROUP_SIZE
            quantization.INT4_GROUP_SIZE = group or before
            try:
                quantization.quantize_int4(model, backend="torchao")
            finally:
                quantization.INT4_GROUP_SIZE = before
        return model

    def perplexity(model) -> float:
        with torch.inference_mode():
            loss = model(input_ids=text_ids, labels=text_ids).loss
        return float(torch.exp(loss))

    def greedy(model) -> list[int]:
        with torch.inference_mode():
            out = model.generate(
                story_ids,
                attention_mask=torch.ones_like(story_ids),
                do_sample=False,
                max_new_tokens=GREEDY_TOKENS,
                min_new_tokens=GREEDY_TOKENS,
                pad_token_id=tokenizer.eos_token_id,
            )
        return out[0, story_ids.shape[1] :].tolist()

    reference = bf16 = bf16_ppl = None
    print(
        f"quality of SmolLM2-135M-Instruct: perplexity on {text_ids.shape[1]} tokens of fixed prose; "
        f"agreement with fp32 over {GREEDY_TOKENS} greedy tokens",
        flush=True,
    )
    variants = [("float32", "none", None), ("bfloat16", "none", None), ("bfloat16", "int4", None)]
    variants += [("bfloat16", "int4-torchao", group) for group in (32, 64, 128)]
    variants += [("float32", "int4", None)]
    variants += [("bfloat16", "bnb-8bit", None), ("bfloat16", "bnb-4bit", None)]
    for dtype, quant, group in variants:
        started = time.perf_counter()
        try:
            model = load(dtype, quant, group)
        except Exception as exc:  # e.g. bitsandbytes or torchao not installed
            print(f"{dtype:9} {quant:9} skipped: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}", flush=True)
            continue
        ppl = perplexity(model)
        tokens = greedy(model)
        if reference is None:
            reference = tokens
        if dtype == "bfloat16" and quant == "none":
            bf16, bf16_ppl = tokens, ppl
        vs_bf16 = ""
        if bf16 is not None and bf16_ppl is not None and quant != "none":
            agree = next((i for i, (a, b) in enumerate(zip(tokens, bf16, strict=False)) if a != b), len(bf16))
            vs_bf16 = f"  vs bf16: perplexity {ppl / bf16_ppl - 1:+.1%}, agree_prefix={agree / len(bf16):6.1%}"
        same_prefix = next(
            (i for i, (a, b) in enumerate(zip(tokens, reference, strict=False)) if a != b), len(reference)
        )
        same_at = sum(a == b for a, b in zip(tokens, reference, strict=False))
        label = f"{quant} g{group}" if group else quant
        print(
            f"{dtype:9} {label:10} perplexity={ppl:7.3f}  agree_prefix={same_prefix / len(reference):6.1%}  "
            f"agree_positions={same_at / len(reference):6.1%}{vs_bf16}  ({time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        del model


if __name__ == "__main__":
    main()
