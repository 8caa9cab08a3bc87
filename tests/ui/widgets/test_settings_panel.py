"""The sidebar's pieces that need no app: how a server's models are listed."""

from __future__ import annotations

from tui.ui.widgets.settings_panel import served_label


def test_a_servers_lora_adapters_say_on_what_they_apply():
    adapters = {"sql-lora": "meta-llama/Llama-3.1-8B", "local": "/models/base/"}
    assert served_label("sql-lora", adapters) == "sql-lora (LoRA on Llama-3.1-8B)"
    assert served_label("local", adapters) == "local (LoRA on base)"
    assert served_label("meta-llama/Llama-3.1-8B", adapters) == "meta-llama/Llama-3.1-8B"
