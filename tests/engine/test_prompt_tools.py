"""Tools reach the chat template, and a conversation with a tool call and its result renders."""

from __future__ import annotations

import shutil

from tui.engine import Engine, Finished, GenerationSettings, LoadSettings
from tui.tools.calls import ToolCall

# A Hermes-style template (as Qwen's and SmolLM3's) that renders tools, tool calls and results.
TEMPLATE = (
    "{% if tools %}<|im_start|>system\n<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools><|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
    "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
ADD = {"type": "function", "function": {"name": "add", "description": "Add two whole numbers.",
                                        "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}


def test_tools_and_a_tool_round_render_through_the_template(tiny_model_dir, tmp_path):
    model_dir = tmp_path / "tiny-tools"
    shutil.copytree(tiny_model_dir, model_dir)
    (model_dir / "chat_template.jinja").write_text(TEMPLATE, encoding="utf-8")
    engine = Engine()
    try:
        engine.load(LoadSettings(model=str(model_dir))).result()
        builder, tokenizer = engine._builder, engine._loaded.tokenizer
        ask = [{"role": "user", "content": "What is 2 + 3?"}]
        with_tools = tokenizer.decode(builder.build(ask, 512, 8, [ADD]).ids)
        assert '"name": "add"' in with_tools and "Add two whole numbers." in with_tools
        assert "<tools>" not in tokenizer.decode(builder.build(ask, 512, 8).ids)
        call = ToolCall("add", {"a": 2, "b": 3}, id="call_1")
        rounds = ask + [{"role": "assistant", "content": "", "tool_calls": [call.as_message_part()]},
                        {"role": "tool", "tool_call_id": "call_1", "name": "add", "content": "5"}]
        rendered = tokenizer.decode(builder.build(rounds, 512, 8, [ADD]).ids)
        assert '<tool_call>{"name": "add", "arguments": "{\\"a\\": 2, \\"b\\": 3}"}</tool_call>' in rendered
        assert "<|im_start|>tool\n5<|im_end|>" in rendered
        settings = GenerationSettings().with_updates({"do_sample": False, "max_new_tokens": 4})
        final = engine.generate(rounds, settings, tools=[ADD]).wait()  # the follow-up after a result
        assert isinstance(final, Finished) and final.metrics.new_tokens == 4
        assert final.metrics.prompt_tokens == len(builder.build(rounds, 512, 4, [ADD]).ids)
    finally:
        engine.shutdown()
