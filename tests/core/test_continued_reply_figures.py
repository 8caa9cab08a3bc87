"""A continued reply's figures are the whole reply's (its tokens added up), with the speed of the
part just written, and they are stored and read back as such; a reply written in one go is
stored as before."""

from __future__ import annotations

from tui.core.chat_session import ChatSession
from tui.engine import Finished, TurnMetrics
from tui.store import AutoSaver, Library
from tui.store.meta import MessageMeta
from tui.ui.screens.chat_transcript import stats_text


def test_continue_shows_the_whole_replys_tokens_and_the_continued_parts_speed(tmp_path):
    session = ChatSession(AutoSaver(Library(tmp_path / "library.sqlite3")))
    session.new()
    session.add_user_message("Tell me a story")
    session.start_reply(session.plan_reply("send"))
    first = session.end_reply(
        Finished("Once upon", "length", TurnMetrics(new_tokens=12, decode_tok_s=20.0, ttft_s=0.2, total_s=0.8))
    )
    assert "continued_tokens" not in first.meta.to_dict()  # stored as it always was
    assert stats_text(first.meta).startswith("12 tokens · 20.0 tok/s")

    session.start_reply(session.plan_reply("continue"))
    stored = session.end_reply(
        Finished(" a time", "length", TurnMetrics(new_tokens=9, decode_tok_s=7.5, ttft_s=0.3, total_s=1.5))
    )
    metrics = stored.meta.metrics
    assert metrics is not None
    assert (metrics.new_tokens, metrics.continued_tokens, metrics.decode_tok_s) == (21, 9, 7.5)
    assert metrics.total_s == 2.3
    assert stats_text(stored.meta) == "21 tokens · the last 9 continued at 7.5 tok/s · TTFT 0.30 s"
    assert MessageMeta.from_dict(stored.meta.to_dict()).metrics == metrics  # stored and read back

    session.start_reply(session.plan_reply("continue"))  # and again: still the whole reply
    again = session.end_reply(Finished(" there", "length", TurnMetrics(new_tokens=4, decode_tok_s=6.0)))
    assert again.meta.metrics is not None
    assert (again.meta.metrics.new_tokens, again.meta.metrics.continued_tokens) == (25, 4)
