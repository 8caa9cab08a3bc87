"""What chatui was asked to do: the options of one run, their defaults, and how config.toml and
the command line combine (built-in defaults < config.toml < command-line flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tui.engine.settings import GenerationSettings, LoadSettings
from tui.store.config import Config
from tui.tools.servers import configured_servers


@dataclass
class Options:
    load: LoadSettings = field(default_factory=LoadSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    system_prompt: str | None = None
    prompts: list[str] = field(default_factory=list)  # headless turns (`--prompt`)
    attachments: list[tuple[str, bool]] = field(default_factory=list)  # `--image`/`--file`: (path, image only)
    adapters: list[tuple[str | None, str]] = field(default_factory=list)  # `--adapter [NAME=]PATH`: (name, path)
    merge_adapter: bool = False  # `--merge-adapter`: merge the adapter in use into the weights
    stats: bool = False
    list_tools: bool = False  # `--list-tools`: the MCP servers and their tools, then exit
    approve_tools: tuple[str, ...] = ()  # headless: tools whose calls may run (`--approve-tools`)
    approve_all_tools: bool = False  # headless: every call may run
    tool_servers: list[Any] = field(default_factory=list)  # config.toml's MCP servers (ServerConfig)
    tool_problems: list[str] = field(default_factory=list)  # what is wrong with that configuration
    logprobs: int = 0  # headless: top tokens recorded per step (0: none)
    logprobs_file: str | None = None  # headless: where each token's JSON line goes
    theme: str | None = None
    save: bool = True
    conversation: str | None = None  # id, id prefix or "last"
    library_command: tuple[str, ...] | None = None  # ("list",), ("export", ref, fmt, out), ("import", path)
    model_command: tuple[str, ...] | None = None  # ("models", "text"|"json"), ("doctor",), ("download", id)
    # What the command line set, which config.toml must not override.
    load_overrides: dict[str, Any] = field(default_factory=dict)
    generation_overrides: dict[str, Any] = field(default_factory=dict)
    generation_file: dict[str, Any] = field(default_factory=dict)  # from --generation-config

    def apply_config(self, config: Config) -> None:
        """The model's generation_config.json (applied by transformers under everything chatui
        passes) < chatui's defaults < --generation-config < config.toml < command-line flags."""
        self.load = config.load_settings(self.load_overrides)
        self.generation = config.generation_settings(self.generation_overrides, self.generation_file)
        if self.system_prompt is None:
            self.system_prompt = config.system_prompt
        if self.theme is None:
            self.theme = config.theme
        self.tool_servers, self.tool_problems = configured_servers(config.mcp, config.path)
