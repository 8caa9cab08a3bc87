"""The backend in use: the in-process engine, or another kind chosen by the load settings (an
OpenAI-compatible server for `endpoint`). The app and headless mode hold one `Backends` and never
ask which: it is a `Backend` itself and hands each call to the one in use.

A load that fails leaves the one in use as it was (the in-process engine keeps its model). When
another backend takes over, the in-process model is unloaded, to give its memory back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from tui.engine.backend import AdapterControl, Backend, Capabilities, Progress
from tui.engine.compiled import CompileJob
from tui.engine.loading import ModelInfo
from tui.engine.prompt import Message
from tui.engine.session import Engine
from tui.engine.settings import GenerationSettings, LoadSettings
from tui.engine.turn import Turn


def _remote() -> Backend:
    from tui.engine.remote import RemoteBackend  # httpx2: only when a server is used

    return RemoteBackend()


# The backends besides the in-process engine: a name, which load settings it serves, and how to
# make one (made on the first load it serves). The first that matches a load takes it.
KINDS: tuple[tuple[str, Callable[[LoadSettings], bool], Callable[[], Backend]], ...] = (
    ("remote", lambda settings: bool(settings.endpoint), _remote),
)


class Backends:
    def __init__(self, local: Engine | None = None) -> None:
        self.local = local or Engine()
        self.others: dict[str, Backend] = {}  # by kind, made on first use
        self.current: Backend = self.local

    def _serving(self, settings: LoadSettings) -> Backend:
        for name, serves, make in KINDS:
            if serves(settings):
                if name not in self.others:
                    self.others[name] = make()
                return self.others[name]
        return self.local

    @property
    def info(self) -> ModelInfo | None:
        return self.current.info

    @property
    def load_settings(self) -> LoadSettings | None:
        return self.current.load_settings

    @property
    def capabilities(self) -> Capabilities:
        return self.current.capabilities

    @property
    def adapters(self) -> AdapterControl | None:
        return self.current.adapters

    @property
    def compile(self) -> CompileJob | None:
        return self.current.compile

    def load(self, settings: LoadSettings, progress: Progress | None = None) -> Future[ModelInfo]:
        target = self._serving(settings)
        inner = target.load(settings, progress)
        outer: Future[ModelInfo] = Future()

        def switched(f: Future[ModelInfo]) -> None:
            # The switch happens before anyone waiting on the returned future wakes up: a
            # generate() right after load().result() goes to the backend just loaded.
            if f.cancelled():
                outer.cancel()
                return
            error = f.exception()
            if error is None and self.current is not target:
                previous, self.current = self.current, target
                if previous is self.local:
                    self.local.unload()
            if error is not None:
                outer.set_exception(error)
            else:
                outer.set_result(f.result())

        inner.add_done_callback(switched)
        return outer

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        logprobs: int = 0,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> Turn:
        return self.current.generate(messages, settings, logprobs, tools)

    def prefill(self, messages: Sequence[Message], settings: GenerationSettings) -> Future[int]:
        return self.current.prefill(messages, settings)

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        return self.current.count_tokens(messages)

    def parse_response(self, text: str, tools: Sequence[dict[str, Any]] | None = None) -> Future[dict | None]:
        return self.current.parse_response(text, tools)

    def decode(self, token_ids: Sequence[int]) -> Future[str]:
        return self.current.decode(token_ids)

    def close(self) -> None:
        self.local.close()
        for backend in self.others.values():
            backend.close()
