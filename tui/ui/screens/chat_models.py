"""Picking a model from the chat screen: the picker (screens/models.py) over the catalogue
read for the load settings in use, a download first for a Hub id not in the cache
(screens/model_download.py), then a reload with the model chosen and the other load options
kept. A part of the chat screen (screens/chat.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.core.catalogue import CatalogueEntry, load_catalogue
from tui.engine.settings import SettingsError
from tui.ui.screens.model_download import ModelDownloadScreen
from tui.ui.screens.models import ModelPicker
from tui.ui.state import AppState

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen


class ModelPicking:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen

    def read_catalogue(self) -> tuple[list[CatalogueEntry], list[str]]:
        """On a thread: the catalogue for the load options in use (the CPU's bandwidth measured
        once, without torch, unless a reply is being written; a GPU's only from the cache)."""
        screen = self.screen
        idle = screen.state is not AppState.GENERATING
        return load_catalogue(screen.loader.load_settings, screen.config.model_paths, measure_gpu=False, measure=idle)

    def action_pick_model(self, query: str = "") -> None:
        self.screen.run_worker(self._pick(query), group="pick-model", exclusive=True)

    def pick_for_sidebar(self) -> None:
        """The sidebar's Pick button: the choice goes into its model fields, loaded on Apply with
        the load options set there."""
        self.screen.run_worker(self._pick_for_sidebar(), group="pick-model", exclusive=True)

    async def _pick_for_sidebar(self) -> None:
        chosen = await self._choose("", pick_says="choose (Apply loads it)")
        if chosen is not None:
            self.screen.settings_panel.choose_model(*chosen)

    async def _pick(self, query: str) -> None:
        screen = self.screen
        chosen = await self._choose(query)
        if chosen is None:
            return
        model, endpoint = chosen
        try:
            settings = screen.loader.load_settings.replace(model=model, endpoint=endpoint)
        except SettingsError as exc:  # the other load options do not go with this model
            screen.notify(str(exc), severity="error")
            return
        if screen.replies.generating():
            screen.notify(
                f"A reply is being written: press {screen.keymap.key('chat.stop')} first.", severity="warning"
            )
            return
        screen.loader.reload(settings)

    async def _choose(self, query: str, pick_says: str = "") -> tuple[str | None, str | None] | None:
        """The model and endpoint picked (a Hub id downloaded first), or None when cancelled."""
        screen = self.screen
        in_use = screen.loader.load_settings.model
        picker = ModelPicker(self.read_catalogue, screen.keymap, in_use=in_use, pick_says=pick_says)
        choice = await screen.app.push_screen_wait(picker) if not query else await self._pick_with(picker, query)
        if choice is None:
            return None
        if choice.download:
            downloaded = await screen.app.push_screen_wait(ModelDownloadScreen(choice.download))
            return None if downloaded is None else (downloaded, None)
        if choice.entry is not None:
            return choice.entry.model or None, choice.entry.endpoint or None
        return None

    async def _pick_with(self, picker: ModelPicker, query: str):
        """The picker with its filter already typed (`/model NAME`)."""
        from textual.widgets import Input

        async def type_query() -> None:
            picker.query_one("#models-filter", Input).value = query

        picker.call_after_refresh(type_query)
        return await self.screen.app.push_screen_wait(picker)
