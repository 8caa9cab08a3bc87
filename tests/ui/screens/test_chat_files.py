"""The conversation on disk from the chat screen: saves that fail and come back, the browser,
saving to and opening files."""

from __future__ import annotations

from fakes import ScriptedEngine
from pilot import booted, make_app, message_views, notes, reply_texts, run, send, wait_for
from textual.widgets import Input

from tui.store import AutoSaver, Library
from tui.ui.screens.dialogs import ConfirmScreen, TextPromptScreen


def test_unwritable_library_keeps_messages_in_memory_and_saves_them_later(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a regular file where the data folder should be\n")
    bad_path = blocker / "chatui" / "library.sqlite3"
    saver = AutoSaver(None, reopen=lambda: Library(bad_path))

    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine(["first answer", "second answer"]), saver=saver) as (
            pilot,
            app,
        ):
            await send(pilot, app, "hello disk")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["first answer"])
            await pilot.pause()
            assert [(m.role, m.content) for m in app.chat_screen.messages] == [
                ("user", "hello disk"),
                ("assistant", "first answer"),
            ]
            not_saved = [n for n in app.notified if n.title == "Not saved"]
            assert len(not_saved) == 1  # said once, not once per message
            assert not_saved[0].severity == "error" and "kept in memory" in not_saved[0].message
            assert saver.pending > 0 and saver.library is None
            # /status tells the truth too
            await send(pilot, app, "/status")
            await pilot.pause()
            assert "not saved yet" in message_views(app.chat_screen)[-1].text
            # The disk is fixed: the next retry saves everything, in order.
            blocker.unlink()
            blocker.mkdir()
            app.chat_screen.files.retry_saves()
            await pilot.pause()
            assert saver.pending == 0 and saver.last_error is None
            assert any("Saving works again" in m for m in notes(app))
            await send(pilot, app, "and now?")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(reply_texts(app)) == 2)
            conv_id = app.saver.conversation.id
        stored = Library(bad_path).get(conv_id)
        assert [(m.role, m.content) for m in stored.messages] == [
            ("user", "hello disk"),
            ("assistant", "first answer"),
            ("user", "and now?"),
            ("assistant", "second answer"),
        ]
        assert stored.title == "hello disk"

    run(scenario())


def test_conversations_browser_search_open_and_restore_settings(tmp_path):
    async def scenario():
        library = Library(tmp_path / "library.sqlite3")
        old = library.create(
            model="scripted-model", generation_settings={"temperature": 0.25}, system_prompt="Be terse."
        )
        library.add_message(old.id, "user", "Tell me about penguins")
        library.add_message(old.id, "assistant", "Penguins are flightless birds.")
        other = library.create(model="scripted-model")
        library.add_message(other.id, "user", "Something else entirely")
        library.close()
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            await pilot.press("ctrl+o")
            await pilot.pause()
            assert app.screen.__class__.__name__ == "ConversationBrowser"
            await pilot.press(*"penguin")
            await pilot.pause()
            assert [s.id for s in app.screen.summaries] == [old.id]
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.saver.conversation.id == old.id)
            await pilot.pause()
            assert [v.text for v in message_views(app.chat_screen)] == [
                "Tell me about penguins",
                "Penguins are flightless birds.",
            ]
            assert (
                app.chat_screen.session.generation.temperature == 0.25
                and app.chat_screen.session.system_prompt == "Be terse."
            )

    run(scenario())


def test_a_markdown_save_opens_again_and_saving_over_a_file_asks_first(tmp_path):
    reply = "Here are three colors:\n\nRed: Red\nBlue: Blue"

    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine([reply]))
        target = tmp_path / "chat.md"
        async with app.run_test() as pilot:
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.state == "ready")
            await send(pilot, app, "Name three colors.")
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app) == [reply])
            original = [(m.role, m.content) for m in chat.messages]

            async def save() -> None:
                await pilot.press("ctrl+s")
                await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen))
                app.screen.query_one(Input).value = str(target)
                await pilot.press("enter")

            await save()
            await wait_for(pilot, lambda: target.exists())
            saved = target.read_text(encoding="utf-8")
            target.write_text("an older file\n")
            await save()  # the file exists now: it asks, and "n" keeps it
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")
            await wait_for(pilot, lambda: app.screen is chat)
            assert target.read_text() == "an older file\n" and "Not saved." in notes(app)
            await save()
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_for(pilot, lambda: target.read_text(encoding="utf-8") == saved)

            await pilot.press("ctrl+n")
            await send(pilot, app, f"/open {target}")
            await wait_for(pilot, lambda: [(m.role, m.content) for m in chat.messages] == original)
            assert chat.session.conversation.title == "Name three colors."

    run(scenario())


def test_opening_a_chat_made_with_other_options_offers_them_and_never_reloads_alone(tmp_path):
    async def scenario():
        library = Library(tmp_path / "library.sqlite3")
        old = library.create(model="scripted-model", load_settings={"dtype": "bfloat16", "quantization": "8bit"})
        library.add_message(old.id, "user", "a question from before")
        library.close()
        engine = ScriptedEngine()
        async with booted(tmp_path, engine=engine, size=(120, 40)) as (pilot, app):
            chat = app.chat_screen
            footer_keys = lambda: set(chat.active_bindings)  # keys the footer shows (hidden ones are left out)  # noqa: E731
            assert "f12" not in footer_keys()
            await pilot.press("ctrl+o")
            await wait_for(pilot, lambda: app.screen is not chat)
            await pilot.press("enter")
            await wait_for(pilot, lambda: chat.session.conversation.id == old.id)
            await pilot.pause()
            assert len(engine.loads) == 1  # no reload on its own
            offer = next(n for n in notes(app) if n.startswith("This chat was made with"))
            assert "dtype bfloat16 (now auto)" in offer and "quantization bnb-8bit (now none)" in offer
            assert "f12" in offer and "f12" in footer_keys()
            titles = [n.title for n in app.notified if n.message.startswith("This chat was made with")]
            assert titles == ["Other model options"]  # the same model, loaded otherwise
            await pilot.press("f12")
            await wait_for(pilot, lambda: len(engine.loads) == 2 and chat.state == "ready")
            assert (engine.loads[-1].dtype, engine.loads[-1].quantization) == ("bfloat16", "bnb-8bit")
            assert "f12" not in footer_keys()  # offered no more: it is loaded

    run(scenario())
