"""Adaptive prompt lookup decoding: guess the next tokens from text already in the conversation.

transformers' prompt lookup (`prompt_lookup_num_tokens`) proposes, at every step, the tokens that
followed the *first* earlier occurrence of the last 1-2 tokens. In a chat almost every pair of
tokens has occurred before, so on free text it proposes 10 tokens that are nearly always wrong,
and verifying them costs more than the step it saves (0.6x plain decoding here on a story).

`AdaptivePromptLookup` keeps what works and drops what does not:
- it matches the longest suffix n-gram (4 down to 2 tokens) and takes its *latest* occurrence
  (recent text is what a reply repeats: code being edited, a list being continued);
- it proposes as many tokens as recently got accepted, plus two (1 to `max_tokens`);
- after a proposal is rejected outright, it stops proposing for 1, 2, 4 ... 64 steps, so on text
  that does not repeat it decays to plain one-token steps.
Verification is transformers' own (greedy output is unchanged: only tokens the model itself
would pick are kept).
"""

from __future__ import annotations

import types
from typing import Any

MIN_NGRAM, MAX_NGRAM = 2, 4
MAX_BACKOFF = 64


def _lookup_class():  # a factory: transformers is imported on the torch thread, not at import
    import torch
    from transformers.generation.candidate_generator import CandidateGenerator

    class AdaptivePromptLookup(CandidateGenerator):
        def __init__(self, eos_token_id: Any, max_length: int, max_tokens: int) -> None:
            self.eos = set(eos_token_id.tolist()) if eos_token_id is not None else set()
            self.max_length = max_length
            self.max_tokens = max_tokens
            self.want = min(4, max_tokens)  # tokens to propose next time
            self.skip = 0  # steps left without proposing
            self.backoff = 1
            self.proposed = 0  # length of the last proposal
            self.stats = {"proposals": 0, "proposed": 0, "accepted": 0, "steps": 0}
            self.ids: list[int] = []
            self.index: dict[int, dict[tuple[int, ...], int]] = {n: {} for n in range(MIN_NGRAM, MAX_NGRAM + 1)}
            self.indexed = dict.fromkeys(self.index, 0)  # per n: the next start to index

        def _find(self, ids: list[int]) -> list[int]:
            # Index every n-gram that has a continuation (newest start wins), incrementally: the
            # sequence only grows during one generate() call.
            for n, table in self.index.items():
                for start in range(self.indexed[n], len(ids) - n):
                    table[tuple(ids[start:start + n])] = start
                self.indexed[n] = max(self.indexed[n], len(ids) - n)
            for n in range(MAX_NGRAM, MIN_NGRAM - 1, -1):
                start = self.index[n].get(tuple(ids[-n:]))
                if start is not None:
                    follow = ids[start + n:start + n + self.want]
                    cut = next((i for i, t in enumerate(follow) if t in self.eos), len(follow))
                    return follow[:cut]
            return []

        def get_candidates(self, input_ids: torch.LongTensor, **kwargs: Any):
            self.stats["steps"] += 1
            self.proposed = 0
            room = self.max_length - input_ids.shape[1] - 1
            if self.skip > 0 or room <= 0:
                self.skip = max(0, self.skip - 1)
                return input_ids, None
            self.ids.extend(input_ids[0, len(self.ids):].tolist())
            found = self._find(self.ids)[:room]
            if not found:
                return input_ids, None
            self.proposed = len(found)
            self.stats["proposals"] += 1
            self.stats["proposed"] += len(found)
            extra = torch.tensor([found], dtype=input_ids.dtype, device=input_ids.device)
            return torch.cat((input_ids, extra), dim=1), None

        def update_candidate_strategy(self, input_ids: torch.LongTensor, scores: torch.Tensor, num_matches: int):
            if not self.proposed:
                return
            matches = int(num_matches)
            self.stats["accepted"] += matches
            if matches == 0:
                self.skip, self.backoff = self.backoff, min(2 * self.backoff, MAX_BACKOFF)
                self.want = max(1, self.want // 2)
            else:
                self.backoff = 1
                self.want = min(self.max_tokens, matches + 2 if matches == self.proposed else matches + 1)

    return AdaptivePromptLookup


_CLASS = None


def use_adaptive_prompt_lookup(model: Any) -> None:
    """Make `model.generate(prompt_lookup_num_tokens=N)` use AdaptivePromptLookup (N = most tokens)."""
    global _CLASS
    if _CLASS is None:
        _CLASS = _lookup_class()
    original = type(model)._get_candidate_generator

    def _get_candidate_generator(self, generation_config, *args: Any, **kwargs: Any):
        if generation_config.prompt_lookup_num_tokens and kwargs.get("assistant_model") is None:
            generator = _CLASS(generation_config._eos_token_tensor, generation_config.max_length,
                               generation_config.prompt_lookup_num_tokens)
            self.last_candidate_generator = generator
            return generator
        return original(self, generation_config, *args, **kwargs)

    model._get_candidate_generator = types.MethodType(_get_candidate_generator, model)
