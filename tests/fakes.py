"""A scripted stand-in for the engine: a `Backend` (tui/engine/backend.py; the type checker holds
it to the contract), no torch. It gives the UI fixed replies and fixed timings, so snapshots are
deterministic; it records every generate call for the tests to check."""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tui.engine import (
    Alternative,
    Failed,
    Finished,
    GenerationSettings,
    LoadError,
    LoadSettings,
    ModelInfo,
    Started,
    TokenChoice,
    TokenDelta,
    TokenProbs,
    Turn,
    TurnMetrics,
)
from tui.engine.adapters import AdapterInfo, AdapterState, default_name
from tui.engine.backend import AdapterControl, Capabilities, Progress
from tui.engine.compiled import CompileJob
from tui.engine.jobs import done, failed
from tui.engine.prompt import Message

FIXED_INFO = ModelInfo(
    name="scripted-model",
    source="/models/scripted",
    device="cpu",
    dtype="float32",
    quantization="none",
    attn_implementation="sdpa",
    context_size=4096,
    parameters=135_000_000,
    footprint_bytes=540 * 2**20,
    has_chat_template=True,
    load_seconds=1.5,
    unavailable={"device:cuda": "no CUDA GPU", "device:mps": "no Apple GPU"},
)


def fixed_metrics(tokens: int) -> TurnMetrics:
    return TurnMetrics(
        prompt_tokens=42,
        prefill_tokens=42,
        new_tokens=tokens,
        ttft_s=0.25,
        decode_tok_s=20.0,
        total_s=1.0,
        rss_bytes=900 * 2**20,
        context_size=4096,
    )


PROBABILITIES = (0.97, 0.62, 0.35, 0.08, 0.88)  # one for each band of the token view's colours, in turn


def scripted_choice(index: int, piece: str) -> TokenChoice:
    """A made-up but fixed token choice for the `index`th word of a scripted reply."""
    p = PROBABILITIES[index % len(PROBABILITIES)]
    token_id = 1000 + index  # made-up ids (ScriptedEngine has no capabilities.token_ids: no branching)
    options = [(token_id, piece, p)] + [
        (2000 + 10 * index + n, f" alt{n}", (1 - p) * share) for n, share in ((1, 0.6), (2, 0.25), (3, 0.1))
    ]
    top = tuple(Alternative(i, t, math.log(q)) for i, t, q in sorted(options, key=lambda o: -o[2]))
    return TokenChoice(token_id, piece, math.log(p), math.log(p), top, top)


class FakeAdapters:
    """Adapters kept as a state only, no model: what the UI shows and asks for."""

    def __init__(self) -> None:
        self.state = AdapterState()

    def load(self, path: str, name: str | None = None, activate: bool = True) -> Future[AdapterInfo]:
        info = AdapterInfo(name or default_name(path), path, path, content_hash_of(path), "LORA", 8, None)
        self.state = AdapterState(self.state.loaded + (info,), ((info.name, 1.0),) if activate else self.state.active)
        return done(info)

    def use(self, mix: Mapping[str, float] | None) -> Future[AdapterState]:
        self.state = self.state.with_active(tuple((mix or {}).items()))
        return done(self.state)

    def unload(self, name: str) -> Future[AdapterState]:
        state = self.state
        loaded = tuple(info for info in state.loaded if info.name != name)
        self.state = AdapterState(loaded, tuple(item for item in state.active if item[0] != name))
        return done(self.state)

    def merge(self) -> Future[AdapterState]:
        self.state = AdapterState(merged=tuple(replace(a, merged=True) for a in self.state.applied()))
        return done(self.state)


def content_hash_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ScriptedEngine:
    """`token_probs`: replies asked for them (generate(logprobs=N)) send made-up, fixed TokenProbs,
    without token ids. `pause_after`: each reply stops after that many words until `resume` is set
    (or the reply is stopped), to look at a reply mid-stream."""

    def __init__(
        self,
        replies: list[str] | None = None,
        *,
        token_delay: float = 0.0,
        load_error: str | None = None,
        hold_load: bool = False,
        fail_after: int | None = None,
        token_probs: bool = False,
        pause_after: int | None = None,
        images: bool = False,
        adapters: bool = False,
    ) -> None:
        self.capabilities = Capabilities(
            tools=True, prefill=True, token_probs=token_probs, images=images, adapters=adapters
        )
        self.replies = list(replies or ["Hello! How can I help?"])
        self.token_delay = token_delay
        self.load_error = load_error
        self.hold_load = hold_load
        self.fail_after = fail_after
        self.pause_after = pause_after
        self.resume = threading.Event()
        self.calls: list[tuple[list[dict], GenerationSettings]] = []
        self.prefills: list[list[dict]] = []
        self.compile: CompileJob | None = None  # no background compile
        self.adapters: AdapterControl | None = FakeAdapters() if adapters else None
        self.loads: list[LoadSettings] = []
        self.info: ModelInfo | None = None
        self.load_settings: LoadSettings | None = None
        self.logprobs_asked = 0
        self.tools_given: Sequence[dict[str, Any]] | None = None

    def load(self, settings: LoadSettings, progress: Progress | None = None) -> Future[ModelInfo]:
        future: Future[ModelInfo] = Future()
        self.loads.append(settings)
        if progress:
            progress(40, 100, "loading weights")
        if self.hold_load:
            return future  # stays loading
        if self.load_error and (settings.model or "") != "good":
            future.set_exception(LoadError(self.load_error))
            return future
        self.info, self.load_settings = FIXED_INFO, settings
        future.set_result(FIXED_INFO)
        return future

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        logprobs: int = 0,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> Turn:
        self.calls.append(([dict(m) for m in messages], settings.copy()))
        self.logprobs_asked = logprobs
        self.tools_given = tools
        turn = Turn()
        reply = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        threading.Thread(target=self._play, args=(turn, reply, settings.streams), daemon=True).start()
        return turn

    def parse_response(self, text: str, tools: Sequence[dict[str, Any]] | None = None) -> Future[dict | None]:
        return done(None)  # no response template: the common formats are read instead

    def prefill(self, messages: Sequence[Message], settings: GenerationSettings) -> Future[int]:
        self.prefills.append([dict(m) for m in messages])
        return done(0)

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        return done(sum(len(str(m["content"]).split()) + 4 for m in messages))  # a stand-in count

    def decode(self, token_ids: Sequence[int]) -> Future[str]:
        return failed(NotImplementedError("scripted replies have no token ids"))

    def _play(self, turn: Turn, reply: str, streams: bool = True) -> None:
        turn.emit(Started(42, 42, 4096, streams=streams))
        if not streams:  # beam search: the reply comes whole at the end, as the engine sends it
            turn.emit(Finished(reply, "stop", fixed_metrics(len(reply.split(" ")))))
            return
        words = reply.split(" ")
        sent: list[str] = []
        for index, word in enumerate(words):
            if turn.stop_requested:
                turn.emit(Finished("".join(sent), "stopped", fixed_metrics(len(sent))))
                return
            if self.fail_after is not None and index >= self.fail_after:
                turn.emit(Failed("generation failed: RuntimeError: simulated", "".join(sent), fixed_metrics(len(sent))))
                return
            if self.pause_after is not None and index == self.pause_after:
                while not self.resume.wait(0.02) and not turn.stop_requested:
                    pass
            piece = word + (" " if index < len(words) - 1 else "")
            sent.append(piece)
            if self.logprobs_asked and self.capabilities.token_probs:
                turn.emit(TokenProbs((scripted_choice(index, piece),)))
            turn.emit(TokenDelta(piece, len(sent)))
            if self.token_delay:
                time.sleep(self.token_delay)
        turn.emit(Finished("".join(sent), "stop", fixed_metrics(len(sent))))

    def close(self) -> None:
        pass


if TYPE_CHECKING:  # the type checker holds the fake to the contract the app is typed against
    from tui.engine.backend import Backend

    _scripted_engine_is_a_backend: Backend = ScriptedEngine()
