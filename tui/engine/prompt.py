"""Turning a conversation into prompt token ids: chat templates, system prompts, fitting the context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# {"role": "system"|"user"|"assistant"|"tool", "content": str or content parts, "tool_calls"?: [...]};
# content parts: {"type": "text", "text"} and {"type": "image", "data": bytes, "mime", "name", "digest"?}.
Message = dict[str, Any]


class PromptError(Exception):
    """The conversation cannot be turned into a prompt (e.g. it cannot fit the context)."""


@dataclass
class Prompt:
    ids: list[int]
    dropped_messages: int  # oldest messages left out to fit the context
    continue_reply: bool  # the last message is an assistant reply to continue
    model_inputs: dict[str, Any] = field(default_factory=dict)  # beside the ids: an image prompt's pixels
    cache_ids: list[int] | None = None  # the ids as the KV cache knows them, where they differ (images)

    @property
    def cache_key(self) -> list[int]:
        return self.cache_ids if self.cache_ids is not None else self.ids


def content_text(content: Any) -> str:
    """Message content as plain text: a text model's view of content parts (an image is named,
    not shown)."""
    if not isinstance(content, list):
        return content or ""
    return "\n\n".join(
        part.get("text", "") if part.get("type") == "text" else f"[image: {part.get('name') or 'unnamed'}]"
        for part in content
    )


def _merge_system(messages: Sequence[Message]) -> list[Message]:
    """For templates that reject the system role: fold it into the first user turn."""
    system = "\n\n".join(content_text(m["content"]) for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    if system:
        for message in rest:
            if message["role"] == "user":
                content = message["content"]
                if isinstance(content, list):
                    message["content"] = [{"type": "text", "text": system}, *content]
                else:
                    message["content"] = f"{system}\n\n{content}"
                break
        else:
            rest.insert(0, {"role": "user", "content": system})
    return rest


def _plain_format(messages: Sequence[Message], continue_reply: bool) -> str:
    names = {"system": "System", "user": "User", "assistant": "Assistant"}
    parts = [f"{names.get(m['role'], m['role'].title())}: {content_text(m['content'])}" for m in messages]
    text = "\n\n".join(parts)
    return text if continue_reply else text + "\n\nAssistant:"


class PromptBuilder:
    """Knows one tokenizer's template and remembers whether it accepts a system role."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.has_template = bool(getattr(tokenizer, "chat_template", None))
        self._system_ok: bool | None = None

    def _render(
        self, messages: Sequence[Message], continue_reply: bool, tools: Sequence[dict[str, Any]] | None = None
    ) -> list[int]:
        tok = self.tokenizer
        if not self.has_template:
            return list(tok(_plain_format(messages, continue_reply), add_special_tokens=True)["input_ids"])
        kwargs: dict[str, Any] = dict(
            tokenize=True,
            add_generation_prompt=not continue_reply,
            continue_final_message=continue_reply,
            return_dict=False,
        )
        if tools:  # JSON schemas, rendered by the template (tools the model may call)
            kwargs["tools"] = list(tools)
        has_system = any(m["role"] == "system" for m in messages)
        if has_system and self._system_ok is not False:
            try:
                ids = self._apply_template(list(messages), kwargs)
                self._system_ok = True
                return ids
            except Exception as exc:  # jinja TemplateError: "System role not supported"
                if "system" not in str(exc).lower():
                    raise
                self._system_ok = False
        merged = _merge_system(messages) if has_system else list(messages)
        return self._apply_template(merged, kwargs)

    def _apply_template(self, messages: list[Message], kwargs: dict[str, Any]) -> list[int]:
        """The chat template applied to `messages` (a text model reads content parts as text)."""
        flat = [
            dict(m, content=content_text(m["content"])) if isinstance(m.get("content"), list) else m for m in messages
        ]
        return _as_list(self.tokenizer.apply_chat_template(flat, **kwargs))

    def token_count(self, messages: Sequence[Message]) -> int:
        """Tokens of `messages` as the model sees them: a conversation ending with a reply is
        counted as it stands, one ending with the user's message with the reply's header."""
        return len(self._render(messages, messages[-1]["role"] == "assistant")) if messages else 0

    def build(
        self,
        messages: Sequence[Message],
        context_size: int,
        max_new_tokens: int,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> Prompt:
        """Render `messages`; drop the oldest turns (never the system prompt, never the last
        message) until the prompt plus `max_new_tokens` fits the context."""
        if not messages:
            raise PromptError("nothing to answer: the conversation is empty")
        continue_reply = messages[-1]["role"] == "assistant"
        if max_new_tokens >= context_size:
            raise PromptError(
                f"max_new_tokens={max_new_tokens} does not fit the model's context of {context_size} tokens"
            )
        budget = context_size - max_new_tokens
        system = [m for m in messages if m["role"] == "system"]
        rest = [m for m in messages if m["role"] != "system"]
        dropped = 0
        while True:
            ids = self._render(system + rest, continue_reply, tools)
            if len(ids) <= budget:
                return Prompt(ids=ids, dropped_messages=dropped, continue_reply=continue_reply)
            # Keep the newest turn: the last user message (and a reply being continued).
            keep_from = len(rest) - (2 if continue_reply and len(rest) >= 2 else 1)
            if keep_from <= 0:
                raise PromptError(
                    f"the last message alone ({len(ids)} tokens with max_new_tokens={max_new_tokens}) "
                    f"does not fit the model's context of {context_size} tokens"
                )
            # Drop the oldest message, and the reply that answered it, so turns stay whole.
            drop = 2 if len(rest) > 2 and rest[0]["role"] == "user" and rest[1]["role"] == "assistant" else 1
            drop = min(drop, keep_from)
            rest = rest[drop:]
            dropped += drop


def _as_list(ids: Any) -> list[int]:
    if hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    if hasattr(ids, "tolist"):
        ids = ids.tolist()
    if ids and isinstance(ids[0], list):
        ids = ids[0]
    return list(ids)
