"""ChatSession's handling of token probabilities: kept with the reply, and never a partial list
that would pass for the whole reply."""

from __future__ import annotations

from tui import token_probs
from tui.core.chat_session import ChatSession
from tui.engine import Finished, TurnMetrics
from tui.engine.events import Alternative, TokenChoice
from tui.store import AutoSaver, Library


def choice(token_id: int, token: str) -> TokenChoice:
    top = (Alternative(token_id, token, -0.1),)
    return TokenChoice(token_id, token, -0.1, -0.2, top, top)


def test_probabilities_are_kept_and_a_continue_of_an_unrecorded_reply_keeps_none(tmp_path):
    session = ChatSession(AutoSaver(Library(tmp_path / "library.sqlite3")))
    session.new()
    session.add_user_message("hi")
    session.start_reply(session.plan_reply("send"))
    session.reply_progress("Hello")
    session.reply_token_probs([choice(1, "Hello")])
    stored = session.end_reply(Finished("Hello", "length", TurnMetrics(new_tokens=1)))
    assert [c.id for c in token_probs.of_message(stored.meta)] == [1]

    session.start_reply(session.plan_reply("continue"))  # recorded before: the lists join
    session.reply_token_probs([choice(2, " there")])
    stored = session.end_reply(Finished(" there", "length", TurnMetrics(new_tokens=1)))
    assert [c.id for c in token_probs.of_message(stored.meta)] == [1, 2]

    session.new()
    session.add_user_message("again")
    session.start_reply(session.plan_reply("send"))
    stored = session.end_reply(Finished("Plain", "length", TurnMetrics(new_tokens=1)))  # not recorded
    session.start_reply(session.plan_reply("continue"))
    session.reply_token_probs([choice(3, " more")])
    stored = session.end_reply(Finished(" more", "length", TurnMetrics(new_tokens=1)))
    assert stored.content == "Plain more" and token_probs.of_message(stored.meta) == []
