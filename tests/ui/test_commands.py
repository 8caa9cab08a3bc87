"""The command palette: built from the table of actions, each entry with its real help and the
key from the user's keymap, and one Help entry."""

from __future__ import annotations

from pilot import chat_ready, make_app, notes, run, wait_for

from tui.store.config import Config
from tui.ui.actions import ACTIONS
from tui.ui.commands import ChatCommands


def palette_entries(app) -> dict[str, str]:
    provider = ChatCommands(app.screen)
    return {title: help_text for title, help_text, _ in provider._commands()}


def test_palette_entries_carry_their_help_and_the_users_key(tmp_path):
    async def scenario():
        config = Config(path=tmp_path / "config.toml", keys={"chat.conversations": "f6", "app.help": "f2"})
        app = make_app(tmp_path, config=config)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: chat_ready(app))  # mounted whole: no quit mid-mount
            entries = palette_entries(app)
            by_title = {a.title: a for a in ACTIONS if a.scope in ("app", "chat") and a.palette}
            for title, action in by_title.items():
                assert entries[title].startswith(action.help)  # real help, not the title again
                assert entries[title] != title
            assert entries["Conversations"].endswith("(f6)") and "ctrl+o" not in entries["Conversations"]
            assert entries["Help"].endswith("(f2)")
            assert sum("help" in title.lower() for title in entries) == 1  # one help entry

    run(scenario())


def test_the_users_help_key_opens_and_closes_help_and_the_stop_key_is_named_as_bound(tmp_path):
    from tui.ui.screens.help import HelpScreen
    from tui.ui.state import AppState

    async def scenario():
        config = Config(path=tmp_path / "config.toml", keys={"app.help": "f2", "chat.stop": "ctrl+k"})
        app = make_app(tmp_path, config=config)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: chat_ready(app))  # mounted whole: no quit mid-mount
            await pilot.press("f2")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            rows = app.screen.query_one("#help-keys")
            assert any(str(rows.get_row_at(n)[0]) == "ctrl+p" for n in range(rows.row_count))  # the palette's key
            await pilot.press("f2")
            await wait_for(pilot, lambda: app.screen is app.chat_screen)
            app.chat_screen.state = AppState.GENERATING
            assert app.chat_screen.replies.generating()
            await wait_for(pilot, lambda: any("press ctrl+k to stop" in note for note in notes(app)), 5)

    run(scenario())
