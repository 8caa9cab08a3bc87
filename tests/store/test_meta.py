"""MessageMeta: the typed record of what is stored with a message, and its stored dict form."""

from __future__ import annotations

from typing import Any

import pytest

from tui.engine.adapters import AppliedAdapter
from tui.store.meta import MessageMeta, ReplyMetrics, ToolResult
from tui.store.model import Message, model_message
from tui.store.parts import TextPart, text_of, text_parts

METRICS = {
    "prompt_tokens": 9,
    "prefill_tokens": 4,
    "new_tokens": 2,
    "ttft_s": 0.1,
    "decode_tok_s": 20.0,
    "total_s": 0.2,
    "rss_bytes": 1,
    "cuda_allocated": 5,
    "cuda_reserved": None,
    "context_size": 2048,
}
ADAPTER = {"name": "tone", "path": "/lora/tone", "sha256": "0123456789abcdef", "weight": 1.0}
RESULT = {"tool_call_id": "c1", "name": "add", "server": None, "outcome": "error", "arguments": {"a": 1}}


@pytest.mark.parametrize(
    "stored",
    [
        {},
        METRICS,
        {**METRICS, "logprobs": [[1, "a", -0.5, -0.5, [], []]]},
        {**METRICS, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": "{}"}}]},
        RESULT,
        {**METRICS, "logprobs": [], "tool_calls": [], "from_a_newer_chatui": {"x": [1]}},
        {**METRICS, "adapters": [ADAPTER, {**ADAPTER, "name": "b", "weight": 0.5, "merged": True}]},
    ],
)
def test_the_stored_dict_reads_back_into_its_groups_and_is_written_back_the_same(stored: dict[str, Any]) -> None:
    meta = MessageMeta.from_dict(stored)
    assert meta.to_dict() == stored
    assert list(meta.to_dict()) == list(stored)  # in the order the library writes
    assert meta.extra == ({"from_a_newer_chatui": {"x": [1]}} if "from_a_newer_chatui" in stored else {})


@pytest.mark.parametrize(
    "stored",
    [
        {key: value for key, value in METRICS.items() if key != "context_size"},  # an incomplete group
        {**METRICS, "new_tokens": "2"},  # a mistyped one
        {**RESULT, "name": 3},
        {"logprobs": "damaged", "tool_calls": {"not": "a list"}},
        {"adapters": [ADAPTER, {**ADAPTER, "weight": "1"}]},
    ],
)
def test_an_incomplete_or_mistyped_group_stays_as_it_was_in_extra(stored: dict[str, Any]) -> None:
    meta = MessageMeta.from_dict(stored)
    assert meta.to_dict() == stored
    assert meta.metrics is None and meta.tool_result is None and meta.token_probs is None
    assert meta.tool_calls is None and meta.adapters is None


def test_groups_read_as_typed_records() -> None:
    assert MessageMeta.from_dict(METRICS).metrics == ReplyMetrics(**METRICS)
    assert MessageMeta.from_dict(RESULT).tool_result == ToolResult("c1", "add", None, "error", {"a": 1})
    assert MessageMeta.from_dict(None) == MessageMeta()
    assert MessageMeta.from_dict({"adapters": [ADAPTER]}).adapters == (
        AppliedAdapter("tone", "/lora/tone", "0123456789abcdef", 1.0),
    )


def test_a_message_is_its_parts_and_the_model_sees_its_text_and_tool_fields() -> None:
    assert text_of((TextPart("Hello, "), TextPart("world"))) == "Hello, world"
    reply = Message(
        "m1", "assistant", text_parts("Adding."), 1.0, None, meta=MessageMeta.from_dict({"tool_calls": [{"id": "c1"}]})
    )
    tool = Message("m2", "tool", text_parts("2"), 2.0, "m1", meta=MessageMeta.from_dict(RESULT))
    assert reply.parts == (TextPart("Adding."),) and reply.content == "Adding."
    assert model_message(reply) == {"role": "assistant", "content": "Adding.", "tool_calls": [{"id": "c1"}]}
    assert model_message(tool) == {"role": "tool", "content": "2", "tool_call_id": "c1", "name": "add"}
