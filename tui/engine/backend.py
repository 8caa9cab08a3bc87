"""The contract every backend keeps: what the app, headless mode and the tests talk to.

A backend loads a model (or connects to one), writes replies as Turns of plain events and
answers small questions about its model (token counts, a tokenizer's response parser, token ids
to text). Every call returns at once: a Future, or a Turn to read. What a backend can do beyond
the basics it declares in `capabilities`, and the UI offers only what is declared.

To add a backend: a module with a class that satisfies `Backend`, and one line in
`tui/engine/backends.py`'s `KINDS` saying which load settings it serves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from tui.engine.adapters import AdapterInfo, AdapterState
from tui.engine.compiled import CompileJob
from tui.engine.loading import ModelInfo
from tui.engine.prompt import Message
from tui.engine.settings import GenerationSettings, LoadSettings
from tui.engine.turn import Turn

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond loading and streaming text."""

    token_probs: bool = False  # generate(logprobs=N) sends TokenProbs events
    token_ids: bool = False  # tokens come with ids: decode() works, a branch from a token can start
    tools: bool = False  # generate(tools=...) offers tools to the model
    prefill: bool = False  # prefill() reads a draft ahead into the KV cache
    images: bool = False  # messages may carry image parts
    adapters: bool = False  # LoRA/PEFT adapters can be loaded and switched


class AdapterControl(Protocol):
    """The LoRA adapters on a backend's model (engine/adapter_control.py): every call returns at
    once; an AdapterError says why not, in one line, and leaves the model as it was."""

    @property
    def state(self) -> AdapterState: ...

    def load(self, path: str, name: str | None = None, activate: bool = True) -> Future[AdapterInfo]: ...

    def use(self, mix: Mapping[str, float] | None) -> Future[AdapterState]: ...

    def unload(self, name: str) -> Future[AdapterState]: ...

    def merge(self) -> Future[AdapterState]: ...


class Backend(Protocol):
    """What chatui asks of any model it talks to."""

    @property
    def info(self) -> ModelInfo | None:
        """The model loaded now, or None."""
        ...

    @property
    def load_settings(self) -> LoadSettings | None:
        """The settings the model loaded now was loaded with, or None."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def adapters(self) -> AdapterControl | None:
        """The adapters on the model, where `capabilities.adapters`; else None."""
        ...

    @property
    def compile(self) -> CompileJob | None:
        """A background torch.compile of the loaded model, when one was asked for."""
        ...

    def load(self, settings: LoadSettings, progress: Progress | None = None) -> Future[ModelInfo]:
        """Load (or connect to) the model `settings` name; a LoadError says why not, in one line."""
        ...

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        logprobs: int = 0,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> Turn:
        """Start a reply to `messages`; its events arrive on the Turn, which always ends."""
        ...

    def prefill(self, messages: Sequence[Message], settings: GenerationSettings) -> Future[int]:
        """Read `messages` ahead into the KV cache; how many tokens were read (0 where not done)."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        """How many tokens `messages` take as the model sees them (0 where unknown)."""
        ...

    def parse_response(self, text: str, tools: Sequence[dict[str, Any]] | None = None) -> Future[dict | None]:
        """A reply parsed by the model's own response template, or None (the caller reads it)."""
        ...

    def decode(self, token_ids: Sequence[int]) -> Future[str]:
        """Token ids as text (only where `capabilities.token_ids`)."""
        ...

    def close(self) -> None:
        """Stop taking work; replies in flight end, queued ones end as stopped."""
        ...
