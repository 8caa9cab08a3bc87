"""Time to first token of an image turn vs a text turn of the same length, through chatui's Engine.

Two random-weight LLaVA-style vision models (speed does not depend on weight values), built once
and cached: "tiny" (the test suite's: a 2-layer CLIP tower on 32x32 images, 16 image tokens, a
2-layer Llama) and "2b" (a SigLIP-so400m-shaped tower, 27 layers on 384x384 images in 14-pixel
patches: 729 image tokens, and SmolLM2-1.7B's text config: about 2.1B parameters). Each turn is
read whole (no KV cache reuse), greedy, one new token; the text turn's prompt has as many tokens
as the image turn's, so the difference is what the vision tower and the projector cost. Prints
medians of --repeats runs after a warm-up; no pass/fail.

  python benchmarks/bench_vision.py [--models tiny,2b] [--repeats 3] [--dtype auto]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_sizes import CONFIGS  # noqa: E402

TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
VISION = {
    "tiny": {
        "model_type": "clip_vision_model",
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    },
    "2b": {  # google/siglip-so400m-patch14-384's vision tower
        "model_type": "siglip_vision_model",
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "image_size": 384,
        "patch_size": 14,
    },
}
TEXT = {
    "tiny": {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
    },
    "2b": CONFIGS["smollm2-1.7b"],
}


def model_dir(name: str) -> Path:
    from tui.paths import cache_dir

    return cache_dir() / "bench-models" / f"vlm-{name}"


def build(name: str) -> Path:
    """The random-weight vision model `name`, built and saved once (bf16 safetensors)."""
    folder = model_dir(name)
    if (folder / "processor_config.json").exists():
        return folder
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlavaConfig, LlavaForConditionalGeneration
    from transformers.models.llava import LlavaProcessor
    from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

    from tui.engine.sources import converted_gguf_dir, default_gguf_path

    print(f"building vlm-{name} (random weights, once)...", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(converted_gguf_dir(default_gguf_path()))
    tokenizer.add_tokens(["<image>"], special_tokens=True)
    tokenizer.chat_template = TEMPLATE
    vision_values = dict(VISION[name])
    vision = AutoConfig.for_model(**vision_values)
    text_values = {key: value for key, value in TEXT[name].items() if key != "architectures"}
    text_values.update(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=None)
    text = AutoConfig.for_model(**text_values)
    siglip = vision_values["model_type"].startswith("siglip")
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="full" if siglip else "default",
        image_seq_length=(vision.image_size // vision.patch_size) ** 2,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = None
    side = vision.image_size
    image_processor = LlavaImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=vision.patch_size,
        vision_feature_select_strategy=config.vision_feature_select_strategy,
        num_additional_image_tokens=0 if siglip else 1,
        chat_template=TEMPLATE,
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def picture() -> bytes:
    from PIL import Image

    image = Image.new("RGB", (640, 480), (40, 90, 200))
    image.paste((255, 255, 255), (0, 0, 200, 150))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def measure(name: str, repeats: int, dtype: str) -> dict:
    from tui.engine import Engine, Finished, GenerationSettings, LoadSettings

    engine = Engine(reuse_cache=False)
    info = engine.load(LoadSettings(model=str(build(name)), dtype=dtype)).result()
    settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 1})
    question = {"type": "text", "text": "What is in this picture?"}
    image = {"type": "image", "data": picture(), "mime": "image/png", "name": "picture.png"}
    image_turn = [{"role": "user", "content": [image, question]}]
    target = engine.count_tokens(image_turn).result()
    words = 1
    while engine.count_tokens([{"role": "user", "content": "word " * words}]).result() < target:
        words += 1
    text_turn = [{"role": "user", "content": "word " * words}]

    def ttft(messages: list[dict]) -> tuple[float, int]:
        final = engine.generate(messages, settings).wait()
        assert isinstance(final, Finished), final
        return final.metrics.ttft_s, final.metrics.prompt_tokens

    ttft(image_turn), ttft(text_turn)  # warm-up
    image_s = statistics.median(ttft(image_turn)[0] for _ in range(repeats))
    text_s = statistics.median(ttft(text_turn)[0] for _ in range(repeats))
    result = {
        "model": f"vlm-{name}",
        "parameters": info.parameters,
        "dtype": info.dtype,
        "prompt_tokens": ttft(image_turn)[1],
        "text_prompt_tokens": ttft(text_turn)[1],
        "image_ttft_s": image_s,
        "text_ttft_s": text_s,
    }
    engine.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny,2b")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="auto")
    args = parser.parse_args()
    for name in args.models.split(","):
        r = measure(name, args.repeats, args.dtype)
        extra = r["image_ttft_s"] - r["text_ttft_s"]
        print(
            f"{r['model']:9} {r['parameters'] / 1e9:5.2f}B {r['dtype']:8} prompt {r['prompt_tokens']} tokens "
            f"(text turn {r['text_prompt_tokens']}): TTFT image {r['image_ttft_s'] * 1000:.0f} ms, "
            f"text {r['text_ttft_s'] * 1000:.0f} ms, the image costs {extra * 1000:+.0f} ms "
            f"({r['image_ttft_s'] / r['text_ttft_s']:.2f}x)",
            flush=True,
        )


if __name__ == "__main__":
    main()
