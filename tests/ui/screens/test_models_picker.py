"""The model picker on a fake Hugging Face cache made of real tiny models: ctrl+l and /model open
it, typing filters, Enter loads, a model that will not fit is marked, a cached model is deleted
after a confirmation, and a Hub id not in the cache is downloaded from the local Hub first."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from hub_server import HubServer
from huggingface_hub import constants
from pilot import booted, notes, run, wait_for
from textual.widgets import Button, DataTable, Input, Select

from tui.core.catalogue import Target, build_catalogue
from tui.engine.hub_cache import cached_models
from tui.engine.machine import Bandwidth, Machine
from tui.engine.settings import LoadSettings
from tui.ui.screens.chat_models import ModelPicking
from tui.ui.screens.model_download import ModelDownloadScreen
from tui.ui.screens.models import ModelPicker, matches

GIB = 2**30


def pinned_catalogue(free: int = 16 * GIB):
    """The catalogue of the fake cache on a pinned machine (16 GiB free, 10 GB/s), with the tiny chat
    model used two hours ago."""
    machine = Machine(cpu="test", cores=2, cpu_features=[], memory_total=free, memory_available=free)
    target = Target.of(machine, Bandwidth(10e9, "cpu", 0.0), LoadSettings())
    return lambda self: build_catalogue(target, [("chatui-test/tiny-chat", "", time.time() - 7200)], [])


def picker(app) -> ModelPicker:
    assert isinstance(app.screen, ModelPicker)
    return app.screen


async def open_picker(pilot, app) -> ModelPicker:
    await pilot.press("ctrl+l")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker) and bool(app.screen.entries), what="the picker")
    return picker(app)


def test_the_fuzzy_filter_keeps_the_best_matches_first(hub_cache: Path) -> None:
    entries, _ = pinned_catalogue()(None)
    names = [entry.name for entry in matches("tnybase", entries)]
    assert names == ["chatui-test/tiny-base"]
    assert [e.name for e in matches("", entries)] == [e.name for e in entries]
    assert matches("zzzz", entries) == []


def test_ctrl_l_lists_the_models_and_enter_loads_the_one_typed(
    tmp_path: Path, hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ModelPicking, "read_catalogue", pinned_catalogue())

    async def scenario() -> None:
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            screen = await open_picker(pilot, app)
            names = [entry.name for entry in screen.shown]
            assert names[0] == "chatui-test/tiny-chat"  # used most recently
            assert {"chatui-test/tiny-base", "SmolLM2-135M-Instruct"} <= set(names)
            await pilot.press(*"tiny-base")
            await wait_for(pilot, lambda: [e.name for e in screen.shown] == ["chatui-test/tiny-base"])
            await pilot.press("enter")
            await wait_for(pilot, lambda: len(app.engine.loads) == 2 and app.chat_screen.state == "ready")
            assert app.engine.loads[-1].model == "chatui-test/tiny-base"
            assert app.engine.loads[-1].endpoint is None

    run(scenario())


def test_the_sidebars_pick_button_fills_the_model_field_for_apply(
    tmp_path: Path, hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sidebar's model field has a Pick button: the picker's choice goes into the field and
    loads on Apply, with the load options set in the sidebar (here int4)."""
    monkeypatch.setattr(ModelPicking, "read_catalogue", pinned_catalogue())

    async def scenario() -> None:
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            panel = app.chat_screen.settings_panel
            await pilot.press("ctrl+b")
            await wait_for(pilot, lambda: panel.ready and panel.query("#pick-model"))
            panel.query_one("#pick-model", Button).press()
            await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker) and bool(app.screen.entries))
            assert "enter: choose (Apply loads it)" in str(app.screen.query_one(".dialog-keys").render())
            await pilot.press(*"tiny-base")
            await wait_for(pilot, lambda: [e.name for e in picker(app).shown] == ["chatui-test/tiny-base"])
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.screen is app.chat_screen)
            assert panel.query_one("#load-model", Input).value == "chatui-test/tiny-base"
            assert len(app.engine.loads) == 1  # nothing loads before Apply
            panel.query_one("#load-quantization", Select).value = "int4"
            panel.query_one("#apply", Button).press()
            await wait_for(pilot, lambda: len(app.engine.loads) == 2)
            assert app.engine.loads[-1].model == "chatui-test/tiny-base"
            assert app.engine.loads[-1].quantization == "int4"

    run(scenario())


def test_slash_model_opens_the_picker_filtered_and_marks_what_will_not_fit(
    tmp_path: Path, hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ModelPicking, "read_catalogue", pinned_catalogue(free=2**20))

    async def scenario() -> None:
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            app.chat_screen.prompt_input.load_text("/model tiny-chat")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker) and len(app.screen.shown) == 1)
            screen = picker(app)
            row = screen.query_one(DataTable).get_row_at(0)
            assert str(row[0]) == "✗ chatui-test/tiny-chat" and "✗ too big" in str(row[-2])  # first, for narrow screens
            assert "will NOT fit" in str(screen.query_one("#models-detail").render())
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.chat_screen)
            assert len(app.engine.loads) == 1

    run(scenario())


def test_delete_from_the_cache_asks_with_the_size_first(
    tmp_path: Path, fake_hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "hub"
    shutil.copytree(fake_hub_cache, cache, symlinks=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(ModelPicking, "read_catalogue", pinned_catalogue())

    async def scenario() -> None:
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            screen = await open_picker(pilot, app)
            await pilot.press(*"tiny-base", "down")
            await pilot.press("f8")
            await wait_for(pilot, lambda: app.screen is not screen)
            question = str(app.screen.query_one("Static").render())
            assert question.startswith("Delete chatui-test/tiny-base (") and "from the Hugging Face cache?" in question
            await pilot.press("n")  # no: nothing goes
            await wait_for(pilot, lambda: app.screen is screen)
            assert len(cached_models()) == 2
            await pilot.press("f8")
            await wait_for(pilot, lambda: app.screen is not screen)
            await pilot.press("y")
            await wait_for(pilot, lambda: [r.repo_id for r in cached_models()] == ["chatui-test/tiny-chat"])
            await wait_for(pilot, lambda: "chatui-test/tiny-base" not in [e.name for e in screen.entries])
            assert any(n.startswith("Deleted chatui-test/tiny-base from the cache") for n in notes(app))

    run(scenario())


def test_deleting_the_model_in_use_says_so(tmp_path: Path, hub_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ModelPicking, "read_catalogue", pinned_catalogue())

    async def scenario() -> None:
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            app.engine.load_settings = app.engine.load_settings.replace(model="chatui-test/tiny-base")
            screen = await open_picker(pilot, app)
            assert screen.in_use == "chatui-test/tiny-base"
            await pilot.press(*"tiny-base", "down")
            await pilot.press("f8")
            await wait_for(pilot, lambda: app.screen is not screen)
            assert "It is the model in use" in str(app.screen.query_one("Static").render())
            await pilot.press("n")

    run(scenario())


def test_a_hub_id_not_in_the_cache_is_downloaded_with_progress_then_loaded(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(ModelPicking, "read_catalogue", pinned_catalogue())

    async def scenario() -> None:
        with HubServer() as hub:
            hub.state.add_folder("org/tiny", tiny_model_dir)
            monkeypatch.setenv("HF_ENDPOINT", hub.url)
            async with booted(tmp_path, size=(120, 40)) as (pilot, app):
                screen = await open_picker(pilot, app)
                await pilot.press(*"org/tiny")
                await wait_for(pilot, lambda: "↓ org/tiny" in str(screen.query_one(DataTable).get_row_at(0)[0]))
                await pilot.press("enter")
                await wait_for(pilot, lambda: isinstance(app.screen, ModelDownloadScreen) and app.screen.plan)
                listing = str(app.screen.query_one("#download-files").render())
                assert "model.safetensors" in listing and "MiB in all" in listing
                await pilot.press("enter")
                await wait_for(pilot, lambda: len(app.engine.loads) == 2, what="the download and the load")
                assert app.engine.loads[-1].model == "org/tiny"
                assert [r.repo_id for r in cached_models()] == ["org/tiny"]

    run(scenario())


@pytest.fixture
def online_hub(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """The local Hub with org/tiny and org/gated, online, an empty cache and stored tokens in
    tmp_path, the picker on the pinned catalogue."""
    from huggingface_hub import hf_api

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "stored_tokens"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(ModelPicking, "read_catalogue", pinned_catalogue())
    with HubServer() as hub:
        hub.state.add_folder("org/tiny", tiny_model_dir)
        hub.state.add_folder("org/gated", tiny_model_dir, gated=True)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setattr(hf_api.api, "endpoint", hub.url)
        yield hub


async def start_download(pilot, app, repo_id: str) -> None:
    screen = await open_picker(pilot, app)
    await pilot.press(*repo_id)
    await wait_for(pilot, lambda: f"↓ {repo_id}" in str(screen.query_one(DataTable).get_row_at(0)[0]))
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.screen is not screen, what="the download")


def test_escape_cancels_a_download_and_keeps_what_came(tmp_path: Path, online_hub: HubServer) -> None:
    online_hub.state.pace_s = 0.02  # about 3 MiB/s: the weights take seconds

    async def scenario() -> None:
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            await start_download(pilot, app, "org/tiny")
            download = app.screen
            assert isinstance(download, ModelDownloadScreen)
            await wait_for(pilot, lambda: download.plan is not None)
            await pilot.press("enter")
            bar = download.query_one("#download-file-bar")
            await wait_for(pilot, lambda: "model.safetensors" in str(download.query_one("#download-file").render()))
            await wait_for(pilot, lambda: bar.progress > 0)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.chat_screen, what="the cancel")
            assert any(n.startswith("download cancelled; what came is kept") for n in notes(app))
            assert len(app.engine.loads) == 1  # nothing loaded
            partial = list((tmp_path / "hub" / "models--org--tiny" / "blobs").glob("*.chatui-partial"))
            assert len(partial) == 1 and partial[0].stat().st_size > 0

    run(scenario())


def test_a_gated_repo_asks_for_a_token_then_lists_its_files(tmp_path: Path, online_hub: HubServer) -> None:
    from hub_server import TOKEN

    from tui.ui.screens.dialogs import TextPromptScreen

    async def scenario() -> None:
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            await start_download(pilot, app, "org/gated")
            await wait_for(pilot, lambda: isinstance(app.screen, TextPromptScreen), what="the token question")
            await pilot.press(*TOKEN, "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ModelDownloadScreen) and app.screen.plan is not None)
            assert (tmp_path / "token").read_text() == TOKEN  # where huggingface_hub keeps it
            assert "model.safetensors" in str(app.screen.query_one("#download-files").render())

    run(scenario())


def test_the_app_reads_the_catalogue_without_measuring_while_a_reply_runs(
    tmp_path: Path, hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from tui.engine import machine
    from tui.ui.state import AppState

    measured: list[str] = []
    monkeypatch.setattr(machine, "measure_bandwidth", lambda device="cpu", *a: measured.append(device) or 1e10)
    monkeypatch.setattr(machine, "cached_bandwidth", lambda device="cpu": None)
    monkeypatch.setattr(machine, "_bandwidth_file", lambda: tmp_path / "bandwidth.json")
    screen = SimpleNamespace(
        state=AppState.GENERATING,
        loader=SimpleNamespace(load_settings=LoadSettings()),
        config=SimpleNamespace(model_paths=[]),
    )
    entries, _ = ModelPicking(screen).read_catalogue()  # type: ignore[arg-type]
    assert "chatui-test/tiny-chat" in [e.name for e in entries] and measured == []
    assert all(e.estimate is None or e.estimate.tok_s == 0 for e in entries)  # no figure yet: no speed
    screen.state = AppState.READY
    entries, _ = ModelPicking(screen).read_catalogue()  # type: ignore[arg-type]
    assert measured == ["cpu"]
    assert next(e for e in entries if e.name == "chatui-test/tiny-chat").estimate.tok_s > 0


def test_offline_the_download_says_so_lists_the_cache_and_only_closes(
    tmp_path: Path, hub_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    async def scenario() -> None:
        async with booted(tmp_path, size=(120, 40)) as (pilot, app):
            download = ModelDownloadScreen("org/elsewhere")
            app.push_screen(download)
            await wait_for(
                pilot,
                lambda: (
                    download.query("#download-files")
                    and "offline" in str(download.query_one("#download-files").render())
                ),
            )
            text = str(download.query_one("#download-files").render())
            assert "In the cache: chatui-test/tiny-base, chatui-test/tiny-chat" in text
            assert not download.query_one("#download-bar").display
            assert str(download.query_one(".dialog-keys").render()) == "escape: close"
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is app.chat_screen)

    run(scenario())
