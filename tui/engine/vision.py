"""Image-text-to-text models: telling them apart from text models, and their prompts.

A vision model (LLaVA, SmolVLM/Idefics3, Qwen2.5-VL, Gemma 3, ...) loads with its processor
(`AutoProcessor`; transformers picks the Pillow image processor where torchvision is missing) and
`AutoModelForImageTextToText`. Its chat template takes content parts (`{"type": "image"}`,
`{"type": "text", "text"}`); the processor then expands each image's placeholder into the image's
tokens and turns the images into the model's pixel inputs. Runs on the engine's torch thread.

The KV cache is reused across turns as for text, with one care: an image's tokens are the same
placeholder id whatever the image, so the ids the cache is keyed by (`Prompt.cache_ids`) tag every
image token with the digest of the prompt's images: another image never matches a cached one.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from typing import Any

from tui.engine.prompt import Message, Prompt, PromptBuilder, PromptError

log = logging.getLogger(__name__)

# Processor outputs a reused cache can do without once its images are in the cache, and that can
# go with a prompt whose cached prefix ends before its first image. Others (token types, grids of
# position ids) describe the whole prompt: an image turn with them is read whole.
PIXEL_INPUTS = frozenset({"pixel_values", "image_sizes", "pixel_attention_mask"})


def is_vision_config(config: Any) -> bool:
    """Whether a model's config is an image-text-to-text model with a vision tower."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    return (
        getattr(config, "model_type", None) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
        and getattr(config, "vision_config", None) is not None
    )


def open_image(data: bytes, name: str) -> Any:
    """The image in `data` as an RGB Pillow image; PromptError if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PromptError(f"cannot read the image {name}: {exc}") from exc
    return upright_rgb(image)


def upright_rgb(image: Any) -> Any:
    """`image` as it is meant to be seen, in RGB: turned by its EXIF orientation (a phone's
    portrait photo is stored sideways), and anything transparent laid on white, as
    transformers' `convert_to_rgb` does (a plain convert would make it black)."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def _image_parts(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [
        part
        for m in messages
        if isinstance(m.get("content"), list)
        for part in m["content"]
        if part.get("type") == "image"
    ]


def _as_parts(content: Any) -> list[dict[str, Any]]:
    """Message content as the content parts vision chat templates iterate over."""
    if isinstance(content, list):
        return [{"type": "image"} if p.get("type") == "image" else p for p in content]
    return [{"type": "text", "text": content or ""}]


class ProcessorPromptBuilder(PromptBuilder):
    """Prompts for a vision model: its processor's chat template and image inputs."""

    def __init__(self, processor: Any, model: Any) -> None:
        super().__init__(processor.tokenizer)
        self.processor = processor
        self.has_template = bool(getattr(processor, "chat_template", None) or self.has_template)
        self._opened: dict[str, Any] = {}  # digest → Pillow image, for the prompt being built
        self._inputs: dict[str, Any] = {}
        image_token = getattr(processor, "image_token", None)
        self.image_token_id = getattr(processor, "image_token_id", None) or (
            processor.tokenizer.convert_tokens_to_ids(image_token) if image_token else None
        )
        # Models whose positions depend on the images' grids (Qwen2-VL's M-RoPE) need them whole.
        inner = getattr(model, "model", model)
        self.partial_reuse = not hasattr(inner, "get_rope_index")

    def build(
        self,
        messages: Sequence[Message],
        context_size: int,
        max_new_tokens: int,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> Prompt:
        self._opened.clear()
        digests = [_digest(part) for part in _image_parts(messages)]
        prompt = super().build(messages, context_size, max_new_tokens, tools)
        if not digests:
            return prompt
        prompt.model_inputs = {
            key: value for key, value in self._inputs.items() if key not in ("input_ids", "attention_mask")
        }
        tag = -1 - int(hashlib.sha256("".join(digests).encode()).hexdigest()[:12], 16)
        prompt.cache_ids = [tag if token == self.image_token_id else token for token in prompt.ids]
        return prompt

    def _apply_template(self, messages: list[Message], kwargs: dict[str, Any]) -> list[int]:
        parts = [dict(m, content=_as_parts(m.get("content"))) for m in messages]
        render = {key: value for key, value in kwargs.items() if key not in ("tokenize", "return_dict")}
        text = self.processor.apply_chat_template(parts, tokenize=False, **render)
        images = [self._open(part) for part in _image_parts(messages)]  # those left after trimming
        try:
            self._inputs = dict(
                self.processor(text=text, images=images or None, return_tensors="pt", add_special_tokens=False)
            )
        except (ValueError, TypeError, OSError) as exc:
            raise PromptError(f"the model's processor cannot read this prompt: {exc}") from exc
        return [int(token) for token in self._inputs["input_ids"][0].tolist()]

    def _open(self, part: dict[str, Any]) -> Any:
        digest = _digest(part)
        if digest not in self._opened:
            if len(self._opened) > 64:
                self._opened.clear()
            self._opened[digest] = open_image(part["data"], part.get("name") or "image")
        return self._opened[digest]

    def image_span(self, prompt: Prompt) -> tuple[int, int] | None:
        """The positions of the first and last image tokens of `prompt`, or None."""
        if self.image_token_id is None or not prompt.model_inputs:
            return None
        positions = [i for i, token in enumerate(prompt.ids) if token == self.image_token_id]
        return (positions[0], positions[-1]) if positions else None

    def reuses_around_images(self, prompt: Prompt) -> bool:
        """Whether a cached prefix may end before or after the images (else: read it whole)."""
        return self.partial_reuse and set(prompt.model_inputs) <= PIXEL_INPUTS


def split_reuse(builder: PromptBuilder, prompt: Prompt, cached: int) -> tuple[int | None, dict[str, Any]]:
    """For a prompt whose first `cached` tokens are in the turn cache: how many of them it may
    reuse (None: all), and the model inputs beside the ids (its images' pixels, unless every
    image is in the reused part)."""
    span = builder.image_span(prompt) if isinstance(builder, ProcessorPromptBuilder) else None
    if span is None:
        return None, {}
    assert isinstance(builder, ProcessorPromptBuilder)
    first, last = span
    if not builder.reuses_around_images(prompt):
        most = 0
    elif cached > last:
        return None, {}  # the images are in the cache already
    else:
        most = min(cached, first)
    if most < cached:
        log.info("an image turn reads %d cached tokens again (its images go in whole)", cached - most)
    return most, prompt.model_inputs


def _digest(part: dict[str, Any]) -> str:
    """An image part's SHA-256: the one the library stored it under, else computed here."""
    return part.get("digest") or hashlib.sha256(part["data"]).hexdigest()
