"""Tools reach the chat template, and a conversation with a tool call and its result renders."""

from __future__ import annotations

import shutil

from tui.engine import Engine, Finished, GenerationSettings, LoadSettings
from tui.tools.calls import ToolCall

# A Hermes-style template (as Qwen's and SmolLM3's) that renders tools, tool calls and results.
TEMPLATE = (
    "{% if tools %}<|im_start|>system\n<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}"
    "</tools><|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
    "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two whole numbers.",
        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}},
    },
}


def test_tools_and_a_tool_round_render_through_the_template(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "tiny-tools"
    shutil.copytree(tiny_model_dir, model_dir)
    (model_dir / "chat_template.jinja").write_text(TEMPLATE, encoding="utf-8")
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(model_dir))).result()
        builder, tokenizer = engine.prompt_builder, engine.loaded.tokenizer
        ask = [{"role": "user", "content": "What is 2 + 3?"}]
        with_tools = tokenizer.decode(builder.build(ask, 512, 8, [ADD]).ids)
        assert '"name": "add"' in with_tools and "Add two whole numbers." in with_tools
        assert "<tools>" not in tokenizer.decode(builder.build(ask, 512, 8).ids)
        call = ToolCall("add", {"a": 2, "b": 3}, id="call_1")
        rounds = ask + [
            {"role": "assistant", "content": "", "tool_calls": [call.as_message_part()]},
            {"role": "tool", "tool_call_id": "call_1", "name": "add", "content": "5"},
        ]
        rendered = tokenizer.decode(builder.build(rounds, 512, 8, [ADD]).ids)
        assert '<tool_call>{"name": "add", "arguments": "{\\"a\\": 2, \\"b\\": 3}"}</tool_call>' in rendered
        assert "<|im_start|>tool\n5<|im_end|>" in rendered
        settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 4})
        final = engine.generate(rounds, settings, tools=[ADD]).wait()  # the follow-up after a result
        assert isinstance(final, Finished) and final.metrics.new_tokens == 4
        assert final.metrics.prompt_tokens == len(builder.build(rounds, 512, 4, [ADD]).ids)
    finally:
        engine.close()


def test_the_tokenizers_own_response_template_is_used_when_it_has_one(tiny_engine, monkeypatch):
    from tui.tools.calls import calls_from_parsed

    tokenizer = tiny_engine.loaded.tokenizer
    assert tiny_engine.parse_response('<tool_call>{"name": "add"}</tool_call>').result() is None  # no template
    parsed = {
        "role": "assistant",
        "content": "Sure. ",
        "tool_calls": [{"type": "function", "function": {"name": "add", "arguments": {"a": 1, "b": 2}}}],
    }
    seen = {}

    def parse_response(text, tools=None):
        seen.update(text=text, tools=tools)
        return parsed

    monkeypatch.setattr(tokenizer, "response_template", {"type": "object"}, raising=False)
    monkeypatch.setattr(tokenizer, "parse_response", parse_response, raising=False)
    assert tiny_engine.parse_response("raw reply", [ADD]).result() == parsed
    assert seen == {"text": "raw reply", "tools": [ADD]}
    content, calls = calls_from_parsed(parsed)
    assert content == "Sure." and [(c.name, c.arguments) for c in calls] == [("add", {"a": 1, "b": 2})]

    def broken(text, tools=None):
        raise ValueError("the template does not fit")

    monkeypatch.setattr(tokenizer, "parse_response", broken, raising=False)
    assert tiny_engine.parse_response("raw reply").result() is None  # the common formats are read instead
