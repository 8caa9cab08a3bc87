"""Snapshots of the model picker on the fake Hugging Face cache made of real tiny models (with the
machine and the last-used times pinned), at 120x40 and at 60x20. Update with --snapshot-update
after checking the pictures by eye."""

from __future__ import annotations

import pytest
from pilot import wait_for
from test_models_picker import pinned_catalogue
from test_snapshots import snapshot_app

from tui.ui.screens.chat_models import ModelPicking
from tui.ui.screens.models import ModelPicker


async def open_picker(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.chat_screen.state == "ready")
    await pilot.press("ctrl+l")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker) and bool(app.screen.entries))
    app.clear_notifications()
    await pilot.pause(0.1)


@pytest.mark.parametrize("size", [(120, 40), (60, 20)], ids=["120x40", "60x20"])
def test_model_picker(snap_compare, tmp_path, hub_cache, monkeypatch, size):
    monkeypatch.setattr(ModelPicking, "read_catalogue", pinned_catalogue())
    assert snap_compare(snapshot_app(tmp_path), terminal_size=size, run_before=open_picker)
