"""The status bar."""

from __future__ import annotations

from pilot import make_app, run, wait_for


def test_a_status_tick_after_the_status_line_is_gone_is_harmless(tmp_path):
    """The live tok/s tick can fire while the app shuts down and the status bar's line is already
    removed: it must do nothing, not raise (found by quitting in the middle of a long stream)."""

    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test(size=(100, 30)) as pilot:
            # the sidebar mounts lazily: removing a widget meanwhile trips Textual's Select
            await wait_for(
                pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.settings_panel.is_mounted
            )
            await pilot.pause()
            await app.chat_screen.status.query_one("#status-text").remove()
            app.chat_screen.status.update_info(tok_s=12.5, state="generating")
            assert app.chat_screen.status.info.tok_s == 12.5

    run(scenario())


def test_a_long_adapter_name_is_cut_not_dropped():
    from tui.ui.widgets.status_bar import StatusInfo

    info = StatusInfo(model="m", adapter="a-very-long-adapter-name-from-a-training-run×0.5+other×0.5")
    [item] = [text for _, text in info.items() if text.startswith("LoRA ")]
    assert item == "LoRA a-very-long-adapter-nam…" and len(item) == 5 + 24
    assert "LoRA tone" in [text for _, text in StatusInfo(adapter="tone").items()]
