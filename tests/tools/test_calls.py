"""Tool calls read from the formats models write them in, and MCP tools as chat-template schemas."""

from __future__ import annotations

import json

from tui.tools.calls import ToolCall, function_schemas, parse_tool_calls
from tui.tools.client import ServerStatus, ToolInfo
from tui.tools.servers import ServerConfig


def names_and_args(calls):
    return [(c.name, c.arguments) for c in calls]


def test_qwen_hermes_smollm3_tool_call_tags():
    text = (
        'Let me add.\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>\n'
        '<tool_call>{"name": "env_value", "arguments": "{\\"name\\": \\"HOME\\"}"}</tool_call>'
    )
    content, calls = parse_tool_calls(text)
    assert content == "Let me add."
    assert names_and_args(calls) == [("add", {"a": 2, "b": 3}), ("env_value", {"name": "HOME"})]


def test_mistral_both_forms():
    content, calls = parse_tool_calls('[TOOL_CALLS][{"name": "add", "arguments": {"a": 1, "b": 1}}]')
    assert content == "" and names_and_args(calls) == [("add", {"a": 1, "b": 1})]
    content, calls = parse_tool_calls('[TOOL_CALLS]add[ARGS]{"a": 4, "b": 5}')
    assert names_and_args(calls) == [("add", {"a": 4, "b": 5})]


def test_llama3_json_reply_with_or_without_python_tag():
    for text in (
        '{"name": "add", "parameters": {"a": 7, "b": 8}}',
        '<|python_tag|>{"name": "add", "parameters": {"a": 7, "b": 8}}',
    ):
        assert names_and_args(parse_tool_calls(text)[1]) == [("add", {"a": 7, "b": 8})]


def test_text_that_only_looks_like_a_call_is_left_as_it_is():
    for text in (
        'Here is JSON: {"name": "x"}',
        '{"name": "Ada", "age": 3}',
        "<tool_call>not json</tool_call>",
        "Plain answer.",
    ):
        content, calls = parse_tool_calls(text)
        assert calls == [] and content == text


def test_calls_and_schemas_in_the_forms_chat_templates_take():
    call = ToolCall("add", {"a": 1, "b": 2}, id="call_1")
    assert call.as_message_part() == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "add", "arguments": json.dumps({"a": 1, "b": 2})},
    }
    server = ServerConfig("calc", command="x")
    ready = ServerStatus(
        server,
        "ready",
        tools=[ToolInfo("add", "Add two whole numbers.", {"type": "object", "properties": {"a": {"type": "integer"}}})],
    )
    failed = ServerStatus(server, "failed", "crashed", tools=[])
    assert function_schemas([ready, failed]) == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add two whole numbers.",
                "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
            },
        }
    ]
