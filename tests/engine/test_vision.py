"""A vision model in-process: the tiny random-weight LLaVA (tests/conftest.py) loads with its
Pillow processor and answers images exactly as transformers' own `generate` does."""

from __future__ import annotations

import io

import pytest
from images import image_message, png

from tui.engine import Finished, GenerationSettings, TokenDelta

GREEDY = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 12})
RED, BLUE = png((220, 20, 20)), png((20, 20, 220))


def reference_reply(vlm_dir, messages: list[dict], max_new_tokens: int = 12) -> str:
    """The reply plain transformers writes: the processor's chat template and images, then
    `model.generate`, greedy."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(vlm_dir)
    model = AutoModelForImageTextToText.from_pretrained(vlm_dir, dtype=torch.float32)
    images, template = [], []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts = []
        for part in content:
            if part["type"] == "image":
                images.append(Image.open(io.BytesIO(part["data"])).convert("RGB"))
                parts.append({"type": "image"})
            else:
                parts.append(part)
        template.append({"role": message["role"], "content": parts})
    text = processor.apply_chat_template(template, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=text, images=images or None, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_a_vision_model_loads_with_its_pillow_processor(tiny_vlm_engine):
    loaded = tiny_vlm_engine._loaded
    assert type(loaded.processor.image_processor).__name__ == "LlavaImageProcessorPil"
    assert type(loaded.model).__name__ == "LlavaForConditionalGeneration"
    assert tiny_vlm_engine.capabilities.images and tiny_vlm_engine.capabilities.token_probs
    assert tiny_vlm_engine.info.context_size == 512 and tiny_vlm_engine.info.has_chat_template


def test_a_text_model_declares_no_images(tiny_engine):
    assert not tiny_engine.capabilities.images


def test_greedy_reply_to_an_image_equals_transformers_generate(tiny_vlm_engine, tiny_vlm_dir):
    messages = [image_message(RED, "What is in this picture?")]
    tiny_vlm_engine.turn_cache.drop()
    turn = tiny_vlm_engine.generate(messages, GREEDY)
    events = list(turn)
    final = events[-1]
    assert isinstance(final, Finished), final
    assert "".join(e.text for e in events if isinstance(e, TokenDelta)) == final.text  # it streamed
    assert final.text == reference_reply(tiny_vlm_dir, messages)
    assert final.metrics.prompt_tokens > 16  # the image's 16 tokens are in the prompt

    other = tiny_vlm_engine.generate([image_message(BLUE, "What is in this picture?")], GREEDY).wait()
    assert isinstance(other, Finished) and other.text != final.text  # another image, another reply


def test_text_turns_in_a_vision_chat_reuse_the_cache_over_the_image(tiny_vlm_engine, tiny_vlm_dir):
    tiny_vlm_engine.turn_cache.drop()
    assert isinstance(tiny_vlm_engine.generate([{"role": "user", "content": "Hello"}], GREEDY).wait(), Finished)
    first = [image_message(RED, "Describe it.")]
    tiny_vlm_engine.turn_cache.drop()
    answer = tiny_vlm_engine.generate(first, GREEDY).wait()
    follow = first + [{"role": "assistant", "content": answer.text}, {"role": "user", "content": "And then?"}]
    reused = tiny_vlm_engine.generate(follow, GREEDY).wait()
    assert isinstance(reused, Finished)
    assert reused.metrics.prefill_tokens < reused.metrics.prompt_tokens / 2  # the image stayed in the cache
    assert reused.text == reference_reply(tiny_vlm_dir, follow)

    # Another picture in the same place never matches the cached one: the turn is read again.
    swapped = [image_message(BLUE, "Describe it."), *follow[1:]]
    again = tiny_vlm_engine.generate(swapped, GREEDY).wait()
    assert isinstance(again, Finished) and again.text == reference_reply(tiny_vlm_dir, swapped)
    assert again.metrics.prefill_tokens > 16


def test_a_new_image_after_cached_turns_goes_in_with_its_pixels(tiny_vlm_engine, tiny_vlm_dir):
    tiny_vlm_engine.turn_cache.drop()
    history = [{"role": "user", "content": "Hi there"}]
    first = tiny_vlm_engine.generate(history, GREEDY).wait()
    later = history + [{"role": "assistant", "content": first.text}, image_message(BLUE, "And this one?")]
    reply = tiny_vlm_engine.generate(later, GREEDY).wait()
    assert isinstance(reply, Finished)
    assert reply.metrics.prefill_tokens < reply.metrics.prompt_tokens  # the text before it was reused
    assert reply.text == reference_reply(tiny_vlm_dir, later)


def test_stop_regenerate_and_token_probabilities_work_with_an_image(tiny_vlm_engine):
    messages = [image_message(RED, "Tell me a long story about it.")]
    long = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 200})
    turn = tiny_vlm_engine.generate(messages, long)
    for event in turn:
        if isinstance(event, TokenDelta):
            turn.stop()
    assert isinstance(turn.final, Finished) and turn.final.reason == "stopped"
    again = tiny_vlm_engine.generate(messages, GREEDY).wait()  # a regenerate: the same messages
    probs = tiny_vlm_engine.generate(messages, GREEDY, logprobs=3)
    events = list(probs)
    assert isinstance(events[-1], Finished) and events[-1].text == again.text
    assert sum(len(e.choices) for e in events if type(e).__name__ == "TokenProbs") == 12


def test_a_corrupt_image_fails_the_turn_with_one_line(tiny_vlm_engine):
    final = tiny_vlm_engine.generate([image_message(b"not an image", "Hm?", "broken.png")], GREEDY).wait()
    assert not isinstance(final, Finished)
    assert "cannot read the image broken.png" in final.error and "\n" not in final.error


def test_a_text_model_reads_an_image_message_as_its_text(tiny_engine):
    final = tiny_engine.generate([image_message(RED, "What is it?")], GREEDY).wait()
    assert isinstance(final, Finished)


@pytest.mark.parametrize("messages", [[image_message(RED, "Count the tokens")]])
def test_token_count_includes_the_image_tokens(tiny_vlm_engine, messages):
    with_image = tiny_vlm_engine.count_tokens(messages).result()
    without = tiny_vlm_engine.count_tokens([{"role": "user", "content": "Count the tokens"}]).result()
    assert with_image - without == 16


def test_a_draft_read_ahead_after_an_image_turn_keeps_the_reply_exact(tiny_vlm_engine, tiny_vlm_dir):
    first = [image_message(RED, "Describe it.")]
    tiny_vlm_engine.turn_cache.drop()
    answer = tiny_vlm_engine.generate(first, GREEDY).wait()
    history = first + [{"role": "assistant", "content": answer.text}]
    assert tiny_vlm_engine.prefill(history + [{"role": "user", "content": "Tell me more about"}], GREEDY).result() > 0
    sent = history + [{"role": "user", "content": "Tell me more about the colours"}]
    reply = tiny_vlm_engine.generate(sent, GREEDY).wait()
    assert reply.text == reference_reply(tiny_vlm_dir, sent)
    assert reply.metrics.prefill_tokens < 10  # the image and the draft were in the cache
    # A draft whose images are not in the cache yet is left to the reply (which reads the pixels).
    tiny_vlm_engine.turn_cache.drop()
    assert tiny_vlm_engine.prefill(first, GREEDY).result() == 0


def test_a_smolvlm_shaped_model_splits_images_into_tiles_and_answers_as_transformers_does(tiny_idefics3_dir):
    from tui.engine import Engine, LoadSettings

    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(tiny_idefics3_dir), dtype="float32")).result()
        assert engine.capabilities.images
        messages = [image_message(png((20, 20, 220), size=(60, 40)), "What is it?")]
        first = engine.generate(messages, GREEDY).wait()
        assert isinstance(first, Finished) and first.text == reference_reply(tiny_idefics3_dir, messages)
        assert first.metrics.prompt_tokens > 40  # tiles and a global view, each with its tokens
        follow = messages + [{"role": "assistant", "content": first.text}, {"role": "user", "content": "More?"}]
        reused = engine.generate(follow, GREEDY).wait()
        assert isinstance(reused, Finished) and reused.text == reference_reply(tiny_idefics3_dir, follow)
        assert reused.metrics.prefill_tokens < reused.metrics.prompt_tokens / 2  # the images stayed cached
    finally:
        engine.close()


def test_images_reach_the_model_upright_with_transparency_on_white():
    """A transparent PNG is laid on white (a plain convert made it black) and a photo with an
    EXIF orientation is turned as it is meant to be seen, as transformers' own loaders do."""
    import io

    from PIL import Image

    from tui.engine.vision import open_image

    box = Image.new("RGBA", (64, 32), (0, 0, 0, 0))
    box.paste((0, 0, 0, 255), (8, 8, 24, 24))  # a black square on a transparent ground
    data = io.BytesIO()
    box.save(data, "PNG")
    seen = open_image(data.getvalue(), "box.png")
    assert seen.mode == "RGB" and seen.getpixel((40, 20)) == (255, 255, 255) and seen.getpixel((10, 10)) == (0, 0, 0)

    photo = Image.new("RGB", (80, 40), (200, 10, 10))
    exif = photo.getexif()
    exif[0x0112] = 6  # orientation: stored turned 90°
    data = io.BytesIO()
    photo.save(data, "JPEG", exif=exif)
    assert open_image(data.getvalue(), "photo.jpg").size == (40, 80)

    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0, 255, 255, 255])
    data = io.BytesIO()
    palette.save(data, "PNG", transparency=0)  # a GIF-style transparent palette colour
    assert open_image(data.getvalue(), "p.png").getpixel((5, 5)) == (255, 255, 255)
