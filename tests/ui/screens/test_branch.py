"""Branch to a new chat: the conversation down to a message, copied (with each message's record)
into a new chat that opens; the original stays in the library as it was."""

from __future__ import annotations

import json

from fakes import ScriptedEngine
from images import png
from pilot import booted, notes, run, send, wait_for

from tui.store.files import export_as, import_conversation
from tui.store.parts import FilePart, ImagePart, TextPart
from tui.ui.actions import BY_SLASH
from tui.ui.screens.conversations import _row
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
            # linked to its origin: stored, listed, exported, and /origin opens it at that message
            stored = library.get(branch.id)
            assert (stored.origin_id, stored.origin_message_id) == (origin_id, origin.messages[1].id)
            listed = next(s for s in library.list() if s.id == branch.id)
            assert listed.origin_id == origin_id
            assert f"⑂ from “{origin_title}”" in str(_row(listed, {s.id: s.title for s in library.list()}))
            exported = json.loads(export_as(stored, "json"))
            assert exported["origin"] == {"conversation_id": origin_id, "message_id": origin.messages[1].id}
            (tmp_path / "branch.json").write_text(json.dumps(exported))
            assert import_conversation(tmp_path / "branch.json").origin_id == origin_id
            await send(pilot, app, "/origin")
            await wait_for(pilot, lambda: chat.session.conversation.id == origin_id, what="the origin")
            await wait_for(pilot, lambda: getattr(chat.focused, "message_id", None) == origin.messages[1].id)
            await send(pilot, app, "/origin")  # the origin is no branch
            await wait_for(pilot, lambda: any("has no origin" in note for note in notes(app)))

    run(scenario())


def test_the_palette_and_slash_command_offer_it():
    assert BY_SLASH["branch"].id == BY_SLASH["fork"].id == "chat.branch"
    assert BY_SLASH["branch"].palette and BY_SLASH["branch"].title == "Branch to a new chat"


def test_a_branch_keeps_attachments_and_says_how_to_answer_a_last_question(tmp_path):
    """Branching at a user message with an image and a document: the new chat has the same parts
    (in memory and in the library), and the hint says how to answer it."""
    red = png((220, 20, 20))
    engine = ScriptedEngine(["A red square."], images=True)
    (tmp_path / "red.png").write_bytes(red)
    (tmp_path / "notes.md").write_text("the notes")

    async def scenario():
        async with booted(tmp_path, engine=engine, size=(100, 30)) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, f"/attach {tmp_path / 'red.png'}")
            await send(pilot, app, f"/attach {tmp_path / 'notes.md'}")
            await wait_for(pilot, lambda: len(chat.attachments.pending) == 2)
            await send(pilot, app, "What is this?")
            await wait_for(pilot, lambda: chat.state is AppState.READY and len(chat.messages) == 2)
            origin_id = chat.session.conversation.id
            list(chat.chat.query_children(MessageView))[0].focus()  # the question
            await pilot.press("ctrl+f")
            await wait_for(pilot, lambda: chat.session.conversation.id != origin_id, what="the branch")
            kinds = [type(part) for part in chat.messages[0].parts]
            assert kinds == [ImagePart, FilePart, TextPart]
            assert chat.messages[0].parts[0].data == red
            await wait_for(pilot, lambda: any("has no reply" in note for note in notes(app)))
            app.saver.retry()
            stored = app.saver.library.get(chat.session.conversation.id).messages
            assert [type(part) for part in stored[0].parts] == [ImagePart, FilePart, TextPart]

    run(scenario())
