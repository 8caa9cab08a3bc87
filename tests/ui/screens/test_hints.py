"""Hints where the app used to be silent: a last message with no reply says how to answer it, and
a new message after it asks before putting two of the user's turns in a row."""

from __future__ import annotations

from fakes import ScriptedEngine
from pilot import booted, notes, run, send, wait_for

from tui.cli.main import build_parser
from tui.ui.screens.dialogs import ConfirmScreen
from tui.ui.state import AppState
from tui.ui.widgets.message import MessageView


def test_an_unanswered_last_message_gives_a_hint_and_a_second_turn_asks_first(tmp_path):
    engine = ScriptedEngine(["Hi! How can I help?", "Here is another answer."])

    async def scenario():
        async with booted(tmp_path, engine=engine, size=(100, 30)) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, "Hello")
            await wait_for(pilot, lambda: chat.state is AppState.READY and len(chat.messages) == 2)
            list(chat.chat.query_children(MessageView))[-1].focus()
            await pilot.press("delete")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_for(pilot, lambda: len(chat.messages) == 1)
            assert any("no reply: ctrl+r answers it" in note for note in notes(app))

            await send(pilot, app, "Are you there?")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the question")
            assert "ctrl+r" in app.screen.question
            await pilot.press("n")
            await wait_for(pilot, lambda: app.screen is chat)
            assert [m.content for m in chat.messages] == ["Hello"]  # nothing sent
            assert chat.prompt_input.text == "Are you there?"  # the text is back in the prompt

            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_for(pilot, lambda: chat.state is AppState.READY and len(chat.messages) == 3)
            assert [m.role for m in chat.messages] == ["user", "user", "assistant"]

    run(scenario())


def test_import_help_names_markdown():
    option = next(a for a in build_parser()._actions if "--import" in a.option_strings)
    assert option.help is not None and "Markdown" in option.help
