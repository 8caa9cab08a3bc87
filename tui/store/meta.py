"""What the library records about a message besides its content, as one typed record: a reply's
metrics, its token probabilities and tool calls, a tool result's call. `to_dict`/`from_dict` are
the stored and exported form (the JSON export's "stats"); keys this chatui does not know, from
older or newer files, are kept in `extra` and written back as they were."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from tui.engine.adapters import AppliedAdapter

TOKEN_PROBS_KEY = "logprobs"
TOOL_CALLS_KEY = "tool_calls"
ADAPTERS_KEY = "adapters"


@dataclass(frozen=True)
class ReplyMetrics:
    """How a reply was written (the engine's TurnMetrics, as stored)."""

    prompt_tokens: int = 0
    prefill_tokens: int = 0  # run through the model; the rest of the prompt came from the KV cache
    new_tokens: int = 0
    ttft_s: float = 0.0
    decode_tok_s: float = 0.0
    total_s: float = 0.0
    rss_bytes: int = 0
    cuda_allocated: int | None = None
    cuda_reserved: int | None = None
    context_size: int = 0
    # a continued reply: new_tokens and total_s are the whole reply's, the rest the last part's,
    # which wrote this many tokens (0: written in one go)
    continued_tokens: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplyMetrics:
        """From the stored (or the engine's) figures; one a release did not record takes its default."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def after(self, earlier: ReplyMetrics | None) -> ReplyMetrics:
        """These figures, of a part that continued a reply written with `earlier`, as the whole
        reply's: its tokens and time added up, this part's speed, TTFT and prompt."""
        if earlier is None:
            return self
        return replace(
            self,
            new_tokens=earlier.new_tokens + self.new_tokens,
            total_s=earlier.total_s + self.total_s,
            continued_tokens=self.new_tokens,
        )


@dataclass(frozen=True)
class ToolResult:
    """The call a tool message answers, and how it went ("ok", "error", "denied", "stopped")."""

    tool_call_id: str
    name: str
    server: str | None
    outcome: str
    arguments: Any  # the call's arguments, as the model wrote them (a JSON object)


_OPTIONAL_METRICS = ("continued_tokens",)  # stored only when not 0: older replies lack it
_METRIC_KEYS = tuple(f.name for f in fields(ReplyMetrics) if f.name not in _OPTIONAL_METRICS)
_NULLABLE_METRICS = ("cuda_allocated", "cuda_reserved")  # None off CUDA
_TOOL_RESULT_KEYS = tuple(f.name for f in fields(ToolResult))


@dataclass(frozen=True)
class MessageMeta:
    """Everything recorded with a message but its content; empty for a plain user message."""

    metrics: ReplyMetrics | None = None  # a reply that produced tokens
    token_probs: list[Any] | None = None  # a reply's token choices, compact (see tui.token_probs)
    tool_calls: list[dict[str, Any]] | None = None  # a reply's calls, as chat templates take them
    tool_result: ToolResult | None = None  # a tool message
    adapters: tuple[AppliedAdapter, ...] | None = None  # the LoRA adapters a reply was made with
    extra: dict[str, Any] = field(default_factory=dict)  # keys this chatui does not know

    def to_dict(self) -> dict[str, Any]:
        """The stored form: the flat dict of keys the library has always written ({} when empty)."""
        data: dict[str, Any] = asdict(self.metrics) if self.metrics is not None else {}
        for key in _OPTIONAL_METRICS:
            if not data.get(key):
                data.pop(key, None)
        if self.token_probs is not None:
            data[TOKEN_PROBS_KEY] = self.token_probs
        if self.tool_calls is not None:
            data[TOOL_CALLS_KEY] = self.tool_calls
        if self.tool_result is not None:
            data.update(asdict(self.tool_result))
        if self.adapters is not None:
            data[ADAPTERS_KEY] = [adapter.to_dict() for adapter in self.adapters]
        return data | self.extra

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> MessageMeta:
        """The record of a stored dict; a group with missing or mistyped keys stays in `extra`."""
        rest = dict(data or {})
        metrics = tool_result = None
        if all(
            key in rest and (_is_number(rest[key]) or rest[key] is None and key in _NULLABLE_METRICS)
            for key in _METRIC_KEYS
        ):
            optional = tuple(key for key in _OPTIONAL_METRICS if _is_number(rest.get(key)))
            metrics = ReplyMetrics.from_dict({key: rest[key] for key in (*_METRIC_KEYS, *optional)})
            _drop(rest, (*_METRIC_KEYS, *optional))
        if (
            all(key in rest for key in _TOOL_RESULT_KEYS)
            and all(isinstance(rest[key], str) for key in ("tool_call_id", "name", "outcome"))
            and isinstance(rest["server"], (str, type(None)))
        ):
            tool_result = ToolResult(**{key: rest[key] for key in _TOOL_RESULT_KEYS})
            _drop(rest, _TOOL_RESULT_KEYS)
        token_probs = rest.pop(TOKEN_PROBS_KEY) if isinstance(rest.get(TOKEN_PROBS_KEY), list) else None
        tool_calls = rest.pop(TOOL_CALLS_KEY) if isinstance(rest.get(TOOL_CALLS_KEY), list) else None
        adapters = None
        if isinstance(rest.get(ADAPTERS_KEY), list):
            records = [AppliedAdapter.from_dict(item) for item in rest[ADAPTERS_KEY]]
            if all(record is not None for record in records):
                adapters = tuple(record for record in records if record is not None)
                del rest[ADAPTERS_KEY]
        return cls(metrics, token_probs, tool_calls, tool_result, adapters, rest)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _drop(data: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        del data[key]
