"""F1 help: built from the table of actions with the user's keys; it fits and scrolls in a small
terminal."""

from __future__ import annotations

from pilot import make_app, run, wait_for

from tui.store.config import Config
from tui.ui.screens.help import HelpScreen


def test_help_fits_and_scrolls_in_small_terminals(tmp_path):
    for size in ((60, 20), (120, 40)):

        async def scenario():
            app = make_app(tmp_path)
            async with app.run_test(size=size) as pilot:
                await pilot.press("f1")
                await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
                await pilot.pause()
                dialog = app.screen.query_one("#help-dialog")
                assert dialog.region.right <= size[0] and dialog.region.bottom <= size[1]
                table = app.screen.query_one("#help-keys")
                assert table.size.height == table.row_count + 1  # every row (and the header), none cut off
                assert dialog.max_scroll_y > 0 and dialog.scroll_y == 0  # more than fits: it scrolls
                await pilot.press("pagedown")
                await pilot.pause(0.3)
                assert dialog.scroll_y > 0
                await pilot.press("end")
                await pilot.pause(0.3)
                assert dialog.scroll_y == dialog.max_scroll_y
                await pilot.press("escape")
                await wait_for(pilot, lambda: app.screen is app.chat_screen)

        run(scenario())


def test_help_shows_the_users_own_keys(tmp_path):
    async def scenario():
        config = Config(path=tmp_path / "config.toml", keys={"chat.conversations": "f6", "message.copy": "f9"})
        app = make_app(tmp_path, config=config)
        async with app.run_test(size=(120, 50)) as pilot:
            await pilot.press("f1")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            table = app.screen.query_one("#help-keys")
            rows = [tuple(str(cell) for cell in table.get_row_at(n)) for n in range(table.row_count)]
            assert ("f6", "Conversations") in rows and ("f9 (on a message)", "Copy") in rows
            assert not any(key == "ctrl+o" for key, _ in rows)

    run(scenario())
