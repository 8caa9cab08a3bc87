"""Plain Python events the engine emits while generating; any consumer can read them."""

from __future__ import annotations

from dataclasses import dataclass

from tui.engine.metrics import TurnMetrics


@dataclass(frozen=True)
class Started:
    """The prompt is built and the model starts reading it: its size, and how much of it the
    model has to read (the rest is in the KV cache from earlier turns)."""

    prompt_tokens: int
    prefill_tokens: int
    context_size: int
    streams: bool = True  # False: the reply comes whole at the end (beam search cannot stream)


@dataclass(frozen=True)
class TokenDelta:
    """New reply text (already decoded) and how many tokens the reply has so far."""

    text: str
    tokens: int


@dataclass(frozen=True)
class Finished:
    """The reply ended: `reason` is "stop" (end of turn), "length" (max_new_tokens) or "stopped"."""

    text: str
    reason: str
    metrics: TurnMetrics
    dropped_messages: int = 0  # oldest messages left out to fit the context

    @property
    def stopped(self) -> bool:
        return self.reason == "stopped"


@dataclass(frozen=True)
class Failed:
    """Generation failed; `text` holds what was generated before the failure."""

    error: str
    text: str
    metrics: TurnMetrics | None = None


Event = Started | TokenDelta | Finished | Failed
