"""Branch to a new chat: the conversation down to a message, copied (with each message's record)
into a new chat that opens; the original stays in the library as it was."""

from __future__ import annotations

from fakes import ScriptedEngine
from pilot import booted, notes, run, send, wait_for

from tui.ui.actions import BY_SLASH
from tui.ui.state import AppState
from tui.ui.widgets.message import MessageView


def test_a_message_branches_into_a_new_chat_and_the_original_stays(tmp_path):
    engine = ScriptedEngine(["First answer.", "Second answer.", "A new way."])

    async def scenario():
        async with booted(tmp_path, engine=engine, size=(100, 30)) as (pilot, app):
            chat = app.chat_screen
            for count, text in ((2, "One"), (4, "Two")):
                await send(pilot, app, text)
                await wait_for(pilot, lambda c=count: chat.state is AppState.READY and len(chat.messages) == c)
            origin = chat.session.conversation
            assert origin is not None
            origin_id, origin_title = origin.id, origin.title
            list(chat.chat.query_children(MessageView))[1].focus()  # the first answer
            await pilot.press("ctrl+f")
            await wait_for(pilot, lambda: chat.session.conversation.id != origin_id, what="the branch")
            branch = chat.session.conversation
            assert [m.content for m in branch.messages] == ["One", "First answer."]
            assert branch.title == f"{origin_title} (branch)"
            assert any("branched from" in note for note in notes(app))
            assert chat.focused is chat.prompt_input
            await send(pilot, app, "Another way?")
            await wait_for(pilot, lambda: chat.state is AppState.READY and len(chat.messages) == 4)
            library = app.saver.library
            assert library is not None
            app.saver.retry()
            assert [m.content for m in library.get(origin_id).messages] == [
                "One",
                "First answer.",
                "Two",
                "Second answer.",
            ]
            assert [m.content for m in library.get(branch.id).messages] == [
                "One",
                "First answer.",
                "Another way?",
                "A new way.",
            ]

    run(scenario())


def test_the_palette_and_slash_command_offer_it():
    assert BY_SLASH["branch"].id == BY_SLASH["fork"].id == "chat.branch"
    assert BY_SLASH["branch"].palette and BY_SLASH["branch"].title == "Branch to a new chat"
