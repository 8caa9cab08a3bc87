"""Every screen at every size: at 60x20 each modal keeps its key line on screen and its own keys
in the footer, the sidebar lies over the chat, and the footer and status bar drop items whole;
Tab goes prompt → messages → sidebar and letters typed outside a text field reach the prompt."""

from __future__ import annotations

import math

from fakes import ScriptedEngine
from pilot import booted, run, send, wait_for
from textual.geometry import Region
from textual.widgets._footer import FooterKey

from tui.engine.events import Alternative, TokenChoice
from tui.tools.calls import ToolCall
from tui.tools.client import ServerStatus, ToolInfo
from tui.tools.servers import ServerConfig
from tui.ui.screens.compare import MIN_COLUMN_WIDTH, CompareScreen
from tui.ui.screens.dialogs import ConfirmScreen, TextPromptScreen
from tui.ui.screens.help import HelpScreen
from tui.ui.screens.token_view import TokenViewScreen
from tui.ui.screens.tool_approval import ToolApprovalScreen
from tui.ui.screens.tools import ToolsScreen
from tui.ui.state import AppState
from tui.ui.widgets.keys_footer import fitting
from tui.ui.widgets.message import MessageView
from tui.ui.widgets.status_bar import StatusInfo


def ten_alternatives(index: int) -> TokenChoice:
    """A token whose 10 most likely alternatives were all recorded."""
    top = tuple(Alternative(100 * index + n, f" word{n}", math.log(0.5 / 2**n)) for n in range(10))
    return TokenChoice(top[0].id, top[0].token, top[0].logprob, top[0].logprob, top, top)


def footer_descriptions(screen) -> list[str]:
    return [key.description for key in screen.query(FooterKey) if "-command-palette" not in key.classes]


def inside(widget, outer: Region) -> bool:
    region = widget.region
    return region.height > 0 and outer.contains_region(region)


def test_every_modal_keeps_its_key_line_and_its_own_footer_at_60x20(tmp_path):
    """Each modal at 60x20: its key line lies inside the dialog and above the footer (the token
    view's used to be pushed off screen with alternatives 8, 9 and 0), what does not fit scrolls,
    and the footer shows the modal's keys, not the chat's."""
    call = ToolCall("write_files", {f"file{n}.txt": f"line {n}" for n in range(30)}, id="call_1")
    statuses = [
        ServerStatus(
            ServerConfig(f"server{n}", command="server"),
            "ready",
            tools=[ToolInfo(f"tool{k}", f"Does thing {k}.", {}) for k in range(6)],
        )
        for n in range(4)
    ]
    modals = [
        (lambda app: TokenViewScreen([ten_alternatives(i) for i in range(40)], branch_possible=True), "#token-keys"),
        (lambda app: HelpScreen(app.keymap), ".dialog-keys"),
        (lambda app: ToolsScreen(statuses, []), ".dialog-keys"),
        (lambda app: ToolApprovalScreen(call, "files"), ".dialog-keys"),
        (
            lambda app: ConfirmScreen("Delete “a conversation with a very long title indeed” and all its messages?"),
            ".dialog-keys",
        ),
        (
            lambda app: TextPromptScreen("Save the conversation to a file", placeholder="conversation.md"),
            ".dialog-keys",
        ),
    ]

    async def scenario():
        async with booted(tmp_path, size=(60, 20)) as (pilot, app):
            for make, keys in modals:
                modal = make(app)
                app.push_screen(modal)
                await wait_for(pilot, lambda modal=modal: app.screen is modal and modal.query(FooterKey))
                await pilot.pause()
                screen_area = Region(0, 0, 60, 19)  # the last row is the footer
                key_line = modal.query_one(keys)
                assert inside(key_line, screen_area), (type(modal).__name__, key_line.region)
                dialog = key_line.parent
                assert inside(key_line, dialog.region), type(modal).__name__
                descriptions = footer_descriptions(modal)
                assert descriptions and "New chat" not in descriptions, (type(modal).__name__, descriptions)
                if isinstance(modal, TokenViewScreen):
                    alternatives = modal.query_one("#token-alternatives-scroll")
                    assert inside(alternatives, dialog.region)
                    alternatives.scroll_end(animate=False)
                    await pilot.pause()
                    assert "0  word9" in str(modal.query_one("#token-before").render())
                    assert alternatives.scroll_offset.y + alternatives.scrollable_content_region.height >= 11
                    assert "Colours" in descriptions
                elif not isinstance(modal, (ConfirmScreen, TextPromptScreen)):
                    assert dialog.max_scroll_y > 0  # too long for 20 rows: it scrolls
                await pilot.press("escape")
                await wait_for(pilot, lambda: app.screen is app.chat_screen)

    run(scenario())


def test_compare_columns_scroll_sideways_at_60_columns(tmp_path):
    engine = ScriptedEngine(["The first answer.", *(f"Column {n} answers with a few more words." for n in range(4))])

    async def scenario():
        async with booted(tmp_path, "seed=7", "max_new_tokens=12", engine=engine, size=(60, 20)) as (pilot, app):
            await send(pilot, app, "Hello")
            await wait_for(pilot, lambda: app.chat_screen.state is AppState.READY and len(engine.calls) == 1)
            await send(pilot, app, "/compare")
            await wait_for(
                pilot,
                lambda: isinstance(app.screen, CompareScreen) and all(c.final for c in app.screen.columns),
                what="the compare columns",
            )
            compare = app.screen
            columns = list(compare.query(".compare-column"))
            assert len(columns) == 4
            assert all(column.outer_size.width >= MIN_COLUMN_WIDTH for column in columns)  # no mid-word wrapping
            assert compare.query_one("#compare-columns").max_scroll_x > 0  # the rest is a scroll away
            assert inside(compare.query_one("#compare-keys"), Region(0, 0, 60, 19))
            assert inside(compare.query_one("#compare-scroll-keys"), Region(0, 0, 60, 19))  # how to see the rest
            await pilot.press("ctrl+pagedown")
            await wait_for(pilot, lambda: compare.query_one("#compare-columns").scroll_x > 0)

    run(scenario())


def test_the_sidebar_lies_over_a_narrow_chat_and_escape_closes_it(tmp_path):
    async def scenario():
        async with booted(tmp_path, size=(60, 20)) as (pilot, app):
            chat = app.chat_screen
            panel = chat.settings_panel
            await wait_for(pilot, lambda: panel.is_mounted)
            width = chat.chat.size.width
            await pilot.press("ctrl+b")
            await wait_for(
                pilot, lambda: panel.display and chat.focused is not None and panel in chat.focused.ancestors
            )
            assert panel.has_class("-overlay")
            assert chat.chat.size.width == width and chat.prompt_input.size.width > 50  # the chat keeps its width
            await wait_for(pilot, lambda: "Close sidebar" in footer_descriptions(chat))  # what Esc does now
            assert "Stop" not in footer_descriptions(chat)
            await pilot.press("escape")
            await pilot.pause()
            assert not panel.display and chat.focused is chat.prompt_input
            await wait_for(pilot, lambda: "Stop" in footer_descriptions(chat))
            await pilot.resize_terminal(85, 30)  # room for a narrow chat beside it
            await pilot.press("ctrl+b")
            await pilot.pause()
            assert panel.display and not panel.has_class("-overlay")

    run(scenario())


def test_footer_keeps_help_and_quit_and_drops_keys_whole_at_60_columns(tmp_path):
    async def scenario():
        async with booted(tmp_path, size=(60, 20)) as (pilot, app):
            await pilot.pause()
            keys = [key for key in app.chat_screen.query(FooterKey) if "-command-palette" not in key.classes]
            descriptions = [key.description for key in keys]
            assert descriptions[0] == "Help" and "Quit" in descriptions
            palette = next(key for key in app.chat_screen.query(FooterKey) if "-command-palette" in key.classes)
            for key in keys:  # each whole, none under the palette key
                assert key.region.right <= palette.region.x and key.region.width == key.render().cell_len
            line = app.chat_screen.status.query_one("#status-text")
            shown = str(line.render())
            assert shown == app.chat_screen.status.info.render(line.content_size.width)
            assert "SmolLM2" not in shown or shown.startswith("● ready")

    run(scenario())


def test_fitting_keeps_the_kept_ones_then_the_rest_in_order():
    assert fitting([10, 10, 10, 10], 25, kept=(3,)) == [3, 0]
    assert fitting([10, 30, 5], 20) == [0, 2]  # a later short one fills the gap
    assert fitting([50], 10) == []


def test_the_status_line_drops_the_least_important_items_whole():
    info = StatusInfo(
        state=AppState.READY,
        model="SmolLM2-135M-Instruct",
        device="cpu",
        dtype="bfloat16",
        quantization="none",
        tok_s=21.4,
        ttft_s=0.31,
        context_used=43,
        context_size=8192,
        rss_bytes=1_153 * 2**20,
        probs=True,
    )
    full = info.render()
    assert full == info.render(500)
    assert info.render(58) == "● ready │ SmolLM2-135M-Instruct │ 21.4 tok/s"  # 60 columns
    assert info.render(59) == "● ready │ SmolLM2-135M-Instruct │ 21.4 tok/s │ ctx 43/8,192"
    at_118 = info.render(118)  # with token probabilities on, at 120 columns: RSS whole
    assert "RSS 1,153 MB" in at_118 and len(at_118) <= 118
    for width in range(10, 160):
        line = info.render(width)
        assert len(line) <= width
        assert all(part in full for part in line.split(" │ "))  # nothing cut mid-item
    assert (
        StatusInfo(state=AppState.ERROR, detail="the model could not be loaded at all").render(20)
        == "✖ error: the model…"
    )


def test_tab_goes_prompt_then_messages_then_sidebar_and_letters_reach_the_prompt(tmp_path):
    async def scenario():
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            chat = app.chat_screen
            await wait_for(pilot, lambda: chat.settings_panel.is_mounted)
            await send(pilot, app, "Hello")
            await wait_for(pilot, lambda: chat.state is AppState.READY and len(chat.messages) == 2)
            chat.prompt_input.focus()
            await pilot.pause()
            await pilot.press("tab")
            views = list(chat.chat.query_children(MessageView))
            assert chat.focused is views[-1]  # the reply, not the top of a long chat
            await pilot.press("up", "tab")  # from any message, Tab goes on to the sidebar
            assert chat.focused is not None and chat.focused.id == "preset"
            await pilot.press("shift+tab")
            assert chat.focused is views[-1]
            await pilot.press("tab")
            assert chat.focused.id == "preset"
            await pilot.press(*"hello edit")  # the preset menu neither opens nor eats the letters
            await pilot.pause()
            assert chat.focused is chat.prompt_input and chat.prompt_input.text == "hello edit"
            assert not chat.query_one("#preset").expanded

    run(scenario())


def test_the_attachment_file_picker_fits_60x20(tmp_path):
    """The picker's folder list, name field, filter and both buttons all lie on screen at 60x20."""
    from textual.widgets import Button, Input, Select
    from textual_fspicker.parts import DirectoryNavigation

    from tui.ui.screens.file_picker import attach_picker

    async def scenario():
        async with booted(tmp_path, size=(60, 20)) as (pilot, app):
            picker = attach_picker(tmp_path / "gone" / "deeper")  # a folder since removed: its parent
            app.push_screen(picker)
            await wait_for(pilot, lambda: app.screen is picker and picker.query(Input))
            await pilot.pause()
            assert picker.query_one(DirectoryNavigation).location == tmp_path
            screen_area = Region(0, 0, 60, 20)
            for widget in (picker.query_one(DirectoryNavigation), picker.query_one(Input), picker.query_one(Select)):
                assert inside(widget, screen_area), (type(widget).__name__, widget.region)
            assert [str(b.label) for b in picker.query(Button) if inside(b, screen_area)] == ["Attach", "Cancel"]
            assert picker.query_one(Input).region.width >= 12
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.chat_screen)

    run(scenario())
