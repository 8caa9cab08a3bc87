"""The model chatui talks to: the in-process engine, or an OpenAI-compatible server
(`RemoteBackend`), chosen by the load settings (`endpoint`). The app and headless mode hold one
`Backends` and never ask which: it has the engine's API and hands each call to the one in use.

A load that fails leaves the one in use as it was (the in-process engine keeps its model). When a
server takes over, the in-process model is unloaded, to give its memory back.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Callable, Sequence

from tui.engine.loading import ModelInfo
from tui.engine.prompt import Message
from tui.engine.session import Engine
from tui.engine.turn import Turn
from tui.engine.settings import GenerationSettings, LoadSettings

Progress = Callable[[int, int, str], None]


class Backends:
    def __init__(self, local: Engine | None = None) -> None:
        self.local = local or Engine()
        self.remote: Any = None  # a RemoteBackend, made on the first load with an endpoint
        self.current: Any = self.local

    @property
    def info(self) -> ModelInfo | None:
        return self.current.info

    @property
    def load_settings(self) -> LoadSettings | None:
        return self.current.load_settings

    @property
    def compile(self) -> Any:
        return self.current.compile

    def load(self, settings: LoadSettings, progress: Progress | None = None) -> "Future[ModelInfo]":
        if settings.endpoint:
            if self.remote is None:
                from tui.engine.remote import RemoteBackend  # httpx2: only when a server is used

                self.remote = RemoteBackend()
            target = self.remote
        else:
            target = self.local
        inner = target.load(settings, progress)
        outer: "Future[ModelInfo]" = Future()

        def switched(f: "Future[ModelInfo]") -> None:
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

    def generate(self, messages: Sequence[Message], settings: GenerationSettings, logprobs: int = 0,
                 tools: Sequence[dict[str, Any]] | None = None) -> Turn:
        return self.current.generate(messages, settings, logprobs, tools)

    def prefill(self, messages: Sequence[Message], settings: GenerationSettings) -> "Future[int]":
        return self.current.prefill(messages, settings)

    def count_tokens(self, messages: Sequence[Message]) -> "Future[int]":
        return self.current.count_tokens(messages)

    def parse_response(self, text: str, tools: Sequence[dict[str, Any]] | None = None) -> "Future[dict | None]":
        if self.current is self.local:
            return self.local.parse_response(text, tools)
        future: Future[dict | None] = Future()
        future.set_result(None)
        return future

    def decode(self, token_ids: Sequence[int]) -> "Future[str]":
        """Token ids to text: only the in-process model has them (a server's tokens come as text)."""
        if self.current is not self.local:
            future: Future[str] = Future()
            future.set_exception(NotImplementedError("a remote server's tokens come without ids"))
            return future
        return self.local.decode(token_ids)

    def shutdown(self) -> None:
        self.local.shutdown()
        if self.remote is not None:
            self.remote.shutdown()
