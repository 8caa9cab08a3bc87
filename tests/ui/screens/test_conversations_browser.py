"""The conversations browser: it fits a small terminal, names the user's keys, and returns what
it renamed and deleted."""

from __future__ import annotations

from pilot import booted, make_app, run, wait_for

from tui.store import Library
from tui.store.config import Config
from tui.ui.screens.conversations import ConversationBrowser


def test_the_browser_fits_60_columns_and_shows_the_users_keys(tmp_path):
    with Library(tmp_path / "library.sqlite3") as library:
        conv = library.create(title="A conversation with a rather long title that goes on and on")
        library.add_message(conv.id, "user", "hello")

    async def scenario():
        config = Config(path=tmp_path / "config.toml", keys={"browser.rename": "f4"})
        app = make_app(tmp_path, config=config)
        async with app.run_test(size=(60, 20)) as pilot:
            await pilot.press("ctrl+o")
            await wait_for(pilot, lambda: isinstance(app.screen, ConversationBrowser))
            await pilot.pause()
            dialog = app.screen.query_one("#browser")
            assert dialog.region.right <= 60 and dialog.region.x >= 0
            hint = str(app.screen.query_one(".muted").render())
            assert "f4: rename" in hint and "f2" not in hint

    run(scenario())


def test_renames_and_deletes_come_back_in_the_result(tmp_path):
    with Library(tmp_path / "library.sqlite3") as library:
        first = library.create(title="First")
        library.add_message(first.id, "user", "one")
        second = library.create(title="Second")
        library.add_message(second.id, "user", "two")

    async def scenario():
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            chat = app.chat_screen
            await chat.files.open_conversation(first.id)
            await pilot.press("ctrl+o")
            await wait_for(pilot, lambda: isinstance(app.screen, ConversationBrowser))
            browser = app.screen
            browser.query_one("#browser-search").value = "one"
            await pilot.pause()
            await pilot.press("f2")
            await wait_for(pilot, lambda: app.screen is not browser)
            app.screen.query_one("#prompt-value").value = "Renamed"
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.screen is browser)
            assert browser.renamed == {first.id: "Renamed"}
            await pilot.press("f8", "y")
            await wait_for(pilot, lambda: first.id in browser.deleted)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is chat)
            await pilot.pause()
            assert chat.session.conversation.id != first.id and chat.messages == []  # the open one was deleted

    run(scenario())
