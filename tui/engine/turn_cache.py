"""The KV cache carried from one turn to the next: the previous turn's cache, cropped to the
longest token prefix it shares with the new prompt, so a turn reads only its new tokens. Edits,
regenerates, a new system prompt or trimmed turns change the prefix and invalidate exactly the
part that changed. Used on the engine's torch thread only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tui.engine.loading import LoadedModel


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class TurnCache:
    """The last turn's KV cache and the tokens it holds."""

    def __init__(self, reuse: bool = True) -> None:
        self.reuse = reuse  # False: every turn reads its whole prompt (the reference behaviour)
        self.grow_in_place = True  # torch_parts.GrowingLayer: decode speed holds at long context
        self._cache: Any = None
        self._ids: list[int] = []

    def drop(self) -> None:
        self._cache = None
        self._ids = []

    def cached(self, ids: list[int]) -> int:
        """How many of `ids` the cache holds (their common prefix), without touching it."""
        return common_prefix(self._ids, ids) if self.reuse and self._cache is not None else 0

    def for_prompt(self, loaded: LoadedModel, ids: list[int], most: int | None = None) -> tuple[Any, int]:
        """The cache to prefill `ids` into and how many of them it holds already: the previous
        turn's, cropped to the common prefix (and to `most` tokens), else a new growing one
        (None: generate's own)."""
        cache, reused = self._reusable(ids, most)
        if cache is None and self.grow_in_place:
            from tui.engine.torch_parts import growing_cache

            cache = growing_cache(loaded.model, loaded.info.context_size or None)
        return cache, reused

    def _reusable(self, ids: list[int], most: int | None) -> tuple[Any, int]:
        """The previous turn's KV cache cropped to its common prefix with `ids`, or (None, 0)."""
        if not self.reuse or self._cache is None:
            return None, 0
        keep = min(common_prefix(self._ids, ids), len(ids) - 1, len(ids) if most is None else most)
        if keep <= 0 or not hasattr(self._cache, "crop"):
            self.drop()
            return None, 0
        surplus = self._cache.get_seq_length() - keep
        if surplus > 0:
            try:
                self._cache.crop(-surplus)  # transformers 5: a negative count of tokens to remove
            except (ValueError, RuntimeError):  # e.g. a sliding-window layer past its window
                self.drop()
                return None, 0
        return self._cache, keep

    def keep(self, cache: Any, sequence: list[int]) -> None:
        """Remember `cache` for the next turn: it holds the first tokens of `sequence`."""
        if not self.reuse or cache is None or not hasattr(cache, "get_seq_length"):
            self.drop()
            return
        self._cache = cache
        self._ids = sequence[: cache.get_seq_length()]
