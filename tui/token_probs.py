"""Token probabilities outside the engine: stored with a message (compactly, in its meta), read
back, and written as `--logprobs-file` JSON lines.

Stored form, one list per token: `[id, token, logprob, raw_logprob, top, top_raw]`, where `top`
holds `[id, token, logprob]` after the sampling filters and `top_raw` holds `[id, token, logprob,
kept]` before them; log-probabilities rounded to 4 decimals (a probability to about 0.01%).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from tui.engine.events import Alternative, TokenChoice
from tui.store.meta import MessageMeta


def _num(value: float) -> float:
    return round(value, 4) if math.isfinite(value) else -1e9


def encode(choices: Iterable[TokenChoice]) -> list[list[Any]]:
    return [
        [
            c.id,
            c.token,
            _num(c.logprob),
            _num(c.raw_logprob),
            [[a.id, a.token, _num(a.logprob)] for a in c.top],
            [[a.id, a.token, _num(a.logprob), int(a.kept)] for a in c.top_raw],
        ]
        for c in choices
    ]


def decode(stored: Any) -> list[TokenChoice]:
    """The choices stored with a message; [] for anything that is not that form (old or damaged)."""
    choices = []
    try:
        for token_id, token, logprob, raw, top, top_raw in stored or []:
            choices.append(
                TokenChoice(
                    int(token_id),
                    str(token),
                    float(logprob),
                    float(raw),
                    tuple(Alternative(int(i), str(t), float(lp)) for i, t, lp in top),
                    tuple(Alternative(int(i), str(t), float(lp), bool(k)) for i, t, lp, k in top_raw),
                )
            )
    except (TypeError, ValueError):
        return []
    return choices


def of_message(meta: MessageMeta) -> list[TokenChoice]:
    return decode(meta.token_probs)


def json_line(choice: TokenChoice) -> str:
    """One `--logprobs-file` line: the token, and the most likely tokens after the sampling filters."""
    return json.dumps(
        {
            "token": choice.token,
            "id": choice.id,
            "logprob": choice.logprob,
            "top": [{"token": a.token, "id": a.id, "logprob": a.logprob} for a in choice.top],
        },
        ensure_ascii=False,
    )
