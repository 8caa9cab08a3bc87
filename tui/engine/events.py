"""Plain Python events the engine emits while generating; any consumer can read them."""

from __future__ import annotations

from dataclasses import dataclass

from tui.engine.adapters import AppliedAdapter
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


MAX_LOGPROBS = 20  # the most alternatives recorded per token (OpenAI's top_logprobs limit too)


@dataclass(frozen=True)
class Alternative:
    """A token the model could have written at one step, and its log-probability."""

    id: int
    token: str
    logprob: float
    kept: bool = True  # False: the sampling filters (temperature, top_k, top_p, ...) removed it


@dataclass(frozen=True)
class TokenChoice:
    """One generated token and why: its log-probability under the distribution it was drawn from
    (after the sampling filters) and under the model's own (before them), with the most likely
    alternatives on each side."""

    id: int
    token: str
    logprob: float  # after the filters: what sampling saw
    raw_logprob: float  # before the filters: the model's own distribution
    top: tuple[Alternative, ...]  # the most likely after the filters (only tokens they kept)
    top_raw: tuple[Alternative, ...]  # the most likely before the filters, each marked kept or removed


@dataclass(frozen=True)
class TokenProbs:
    """Log-probabilities of the tokens just generated (only when asked for), sent before their text."""

    choices: tuple[TokenChoice, ...]


@dataclass(frozen=True)
class Finished:
    """The reply ended: `reason` is "stop" (end of turn), "length" (max_new_tokens) or "stopped"."""

    text: str
    reason: str
    metrics: TurnMetrics
    dropped_messages: int = 0  # oldest messages left out to fit the context
    adapters: tuple[AppliedAdapter, ...] = ()  # the LoRA adapters the reply was made with (none: the base)


@dataclass(frozen=True)
class Failed:
    """Generation failed; `text` holds what was generated before the failure."""

    error: str
    text: str
    metrics: TurnMetrics | None = None


Event = Started | TokenDelta | TokenProbs | Finished | Failed
