"""Why the model wrote each token: the probabilities of the token it chose and of the most likely
others, before and after the sampling filters, recorded while the reply streams.

`TokenRecorder` runs on the torch thread, inside `generate`. transformers builds its processor
list in `_get_logits_processor` (repetition penalty and the like, then chatui's own, then the
sampling warpers: temperature, top_k, top_p, min_p, typical_p); the recorder wraps that method
for one call and puts a processor first (it sees the model's raw logits) and one last (it sees
the scores that sampling draws from). Each step's log-probabilities wait in a queue until the
streamer hands over the token chosen (one step late where transformers defers its stop check),
which turns them into `TokenChoice`s. Off unless asked for: generation without it runs exactly
as before.
"""

from __future__ import annotations

import collections
import contextlib
import math
from collections.abc import Iterator
from typing import Any

from tui.engine.events import MAX_LOGPROBS, Alternative, TokenChoice


class TokenRecorder:
    def __init__(self, tokenizer: Any, top_n: int) -> None:
        self.tokenizer = tokenizer
        self.top_n = max(1, min(int(top_n), MAX_LOGPROBS))
        self._raw: Any = None  # this step's raw logits (a tensor)
        self._steps: collections.deque[tuple[Any, Any]] = collections.deque()  # (raw, final) log-probs
        self._pieces: dict[int, str] = {}

    @contextlib.contextmanager
    def attached(self, model: Any) -> Iterator[None]:
        """While inside, `model.generate` records every step (the model's method is wrapped for
        this call only, on the torch thread, the only one that uses the model)."""
        from tui.engine.torch_parts import ScoresTap  # torch and transformers, on the torch thread

        original = model._get_logits_processor

        def with_taps(*args: Any, **kwargs: Any) -> Any:
            processors = original(*args, **kwargs)
            processors.insert(0, ScoresTap(self._on_raw))
            processors.append(ScoresTap(self._on_final))
            return processors

        model._get_logits_processor = with_taps
        try:
            yield
        finally:
            del model._get_logits_processor  # the class's method again

    def _on_raw(self, scores: Any) -> None:
        self._raw = scores[0].float()

    def _on_final(self, scores: Any) -> None:
        import torch

        if self._raw is None:
            return
        raw = torch.log_softmax(self._raw, dim=-1)
        final = torch.log_softmax(scores[0].float(), dim=-1)
        self._steps.append((raw, final))
        self._raw = None

    def take(self, token_ids: list[int]) -> list[TokenChoice]:
        """The choices for tokens just streamed, one recorded step each, oldest first."""
        choices = []
        for token_id in token_ids:
            if not self._steps:
                break  # a token from outside the sampling loop (none in plain decoding)
            raw, final = self._steps.popleft()
            choices.append(self._choice(int(token_id), raw, final))
        return choices

    def _choice(self, token_id: int, raw: Any, final: Any) -> TokenChoice:
        import torch

        n = self.top_n
        final_values, final_ids = torch.topk(final, n)
        raw_values, raw_ids = torch.topk(raw, n)
        kept_of_raw = torch.isfinite(final[raw_ids]).tolist()
        top = tuple(
            Alternative(i, self.piece(i), v)
            for i, v in zip(final_ids.tolist(), final_values.tolist(), strict=True)
            if math.isfinite(v)
        )
        top_raw = tuple(
            Alternative(i, self.piece(i), v, k)
            for i, v, k in zip(raw_ids.tolist(), raw_values.tolist(), kept_of_raw, strict=True)
        )
        return TokenChoice(token_id, self.piece(token_id), float(final[token_id]), float(raw[token_id]), top, top_raw)

    def piece(self, token_id: int) -> str:
        """The text of one token as it reads alone (byte-level pieces of a character show as ?)."""
        text = self._pieces.get(token_id)
        if text is None:
            text = self._pieces[token_id] = self.tokenizer.decode([token_id]).replace("\ufffd", "?")
        return text
