"""Per-turn metrics and memory figures (psutil for the process, torch.cuda when on CUDA)."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field

import psutil

_PROCESS = psutil.Process(os.getpid())


def rss_bytes() -> int:
    return _PROCESS.memory_info().rss


def cuda_memory() -> tuple[int, int] | None:
    """(allocated, reserved) bytes on the current CUDA device, or None off CUDA."""
    torch = sys.modules.get("torch")  # never import torch just to ask
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return torch.cuda.memory_allocated(), torch.cuda.memory_reserved()


@dataclass
class TurnMetrics:
    prompt_tokens: int = 0  # tokens in the whole prompt
    prefill_tokens: int = 0  # tokens actually run through the model (the rest came from the KV cache)
    new_tokens: int = 0
    ttft_s: float = 0.0  # from the request to the first new token
    decode_tok_s: float = 0.0  # new tokens after the first, per second of decoding (no prefill)
    total_s: float = 0.0
    rss_bytes: int = 0
    cuda_allocated: int | None = None
    cuda_reserved: int | None = None
    context_size: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def stats_line(
        self, turn: int, dtype: str = "", quantization: str = "", *, adapter: str = "", limit_pct: float | None = None
    ) -> str:
        """`turn=1 prompt_tokens=… decode_tok_s=… dtype=… quantization=… adapter=… limit_pct=42`:
        limit_pct is decode speed as a share of this machine's memory-bandwidth limit for the model."""
        line = (
            f"turn={turn} prompt_tokens={self.prompt_tokens} new_tokens={self.new_tokens} "
            f"ttft_ms={self.ttft_s * 1000:.0f} decode_tok_s={self.decode_tok_s:.2f} "
            f"total_ms={self.total_s * 1000:.0f} rss_mb={self.rss_bytes / 2**20:.0f}"
        )
        if dtype:
            line += f" dtype={dtype} quantization={quantization or 'none'}"
        if adapter:
            line += f" adapter={adapter}"
        if limit_pct is not None:
            line += f" limit_pct={limit_pct:.0f}"
        return line


@dataclass
class TokenClock:
    """Timestamps taken on the generation thread: start, first token, last token."""

    start: float = field(default_factory=time.perf_counter)
    first: float | None = None
    last: float | None = None
    count: int = 0

    def tick(self, n: int = 1) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        self.count += n

    def finish(self, prompt_tokens: int, prefill_tokens: int, context_size: int) -> TurnMetrics:
        end = time.perf_counter()
        ttft = (self.first - self.start) if self.first is not None else 0.0
        decode_time = (self.last - self.first) if (self.first is not None and self.last is not None) else 0.0
        if self.count > 1 and decode_time > 0:
            decode_rate = (self.count - 1) / decode_time
        else:  # the reply came whole (beam search): its tokens over the whole time
            decode_rate = self.count / (end - self.start) if self.count > 1 and end > self.start else 0.0
        cuda = cuda_memory()
        return TurnMetrics(
            prompt_tokens=prompt_tokens,
            prefill_tokens=prefill_tokens,
            new_tokens=self.count,
            ttft_s=ttft,
            decode_tok_s=decode_rate,
            total_s=end - self.start,
            rss_bytes=rss_bytes(),
            cuda_allocated=cuda[0] if cuda else None,
            cuda_reserved=cuda[1] if cuda else None,
            context_size=context_size,
        )
