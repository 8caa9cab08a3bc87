"""Snapshots of attachments (pytest-textual-snapshot): a message with an image (half-blocks, as a
headless app draws it, so the picture is the same everywhere), the chips above the prompt, and
the image viewer. Update with --snapshot-update after checking the pictures by eye."""

from __future__ import annotations

from pathlib import Path

from fakes import ScriptedEngine
from images import png
from pilot import wait_for
from test_snapshots import SIZE, snapshot_app

from tui.ui.screens.image_viewer import ImageViewer
from tui.ui.widgets.attachments import AttachmentChips

PICTURE = png((40, 90, 200), size=(96, 64))


def files(tmp_path: Path) -> tuple[Path, Path]:
    picture, notes = tmp_path / "harbour.png", tmp_path / "notes.md"
    picture.write_bytes(PICTURE)
    notes.write_text("# Trip\n\n- leave at nine\n- bring the blue boat\n")
    return picture, notes


async def attach_both(pilot, picture: Path, notes: Path) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.chat_screen.state == "ready")
    for path in (picture, notes):
        app.chat_screen.prompt_input.load_text(f"/attach {path}")
        await pilot.press("enter")
    chips = app.chat_screen.query_one(AttachmentChips)
    await wait_for(pilot, lambda: len(chips.labels) == 2 and "tokens" in chips.labels[1])


async def send_with_image(pilot, picture: Path, notes: Path) -> None:
    app = pilot.app
    await attach_both(pilot, picture, notes)
    app.chat_screen.prompt_input.load_text("Where is the boat?")
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.chat_screen.state == "ready" and len(app.chat_screen.messages) == 2)
    app.clear_notifications()
    await pilot.pause(0.2)


def test_chips_above_the_prompt(snap_compare, tmp_path):
    picture, notes = files(tmp_path)

    async def run_before(pilot) -> None:
        await attach_both(pilot, picture, notes)
        pilot.app.chat_screen.prompt_input.load_text("Where is the boat?")
        pilot.app.clear_notifications()
        await pilot.pause(0.1)

    app = snapshot_app(tmp_path, engine=ScriptedEngine(["In the harbour."], images=True))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_a_message_with_an_image(snap_compare, tmp_path):
    picture, notes = files(tmp_path)
    app = snapshot_app(tmp_path, engine=ScriptedEngine(["In the harbour, by the blue boat."], images=True))
    assert snap_compare(app, terminal_size=SIZE, run_before=lambda pilot: send_with_image(pilot, picture, notes))


def test_the_image_viewer(snap_compare, tmp_path):
    picture, notes = files(tmp_path)

    async def run_before(pilot) -> None:
        await send_with_image(pilot, picture, notes)
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ImageViewer))
        await pilot.pause(0.2)

    app = snapshot_app(tmp_path, engine=ScriptedEngine(["In the harbour."], images=True))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
