"""LoRA adapters from the chat screen: `/adapter load|use|unload|merge`, the sidebar's Adapters
section and the status bar's adapter. A part of the chat screen (screens/chat.py); the backend's
`adapters` does the work on its own thread and its futures are awaited through `tui.ui.bridge`.
A switch takes effect at the next reply (the engine runs it after the reply in flight)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from tui.engine.adapter_control import parse_mix
from tui.engine.adapters import AdapterInfo, AdapterState, AppliedAdapter, describe
from tui.engine.backend import AdapterControl
from tui.engine.errors import AdapterError
from tui.engine.sources import one_line
from tui.ui.bridge import answer
from tui.ui.slash import SlashError, parse_slash

if TYPE_CHECKING:
    from tui.store import Message as StoredMessage
    from tui.ui.screens.chat import ChatScreen

log = logging.getLogger(__name__)

USAGE = "/adapter load PATH [NAME] · /adapter use NAME|none|a=0.5,b=0.5 · /adapter unload NAME · /adapter merge"


class AdapterSwitcher:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        # `--adapter`s and `--merge-adapter`, applied once, after the first load
        self.requested: list[tuple[str | None, str]] = []
        self.merge_requested = False
        # what the open chat's last reply was made with, when that is not what is in use (offered)
        self.saved: tuple[AppliedAdapter, ...] = ()
        self.saved_mix: dict[str, float] | None = None  # used once `requested` are loaded

    @property
    def control(self) -> AdapterControl | None:
        engine = self.screen.engine
        return engine.adapters if engine.capabilities.adapters else None

    def action_adapter(self, argument: str = "") -> None:
        try:
            words = parse_slash(f"/adapter {argument}").words()
        except SlashError as exc:
            self.screen.notify(str(exc), severity="error")
            return
        control = self.control
        if control is None:
            self.screen.notify("the model in use takes no adapters here (a server's adapters are its model names)")
            return
        verb, rest = (words[0].lower(), words[1:]) if words else ("", [])
        if verb == "load" and 1 <= len(rest) <= 2:
            self.load(rest[0], rest[1] if len(rest) == 2 else None)
        elif verb == "use" and rest:
            try:
                mix = parse_mix(",".join(rest))
            except AdapterError as exc:
                self.screen.notify(str(exc), severity="error")
                return
            self.run(control.use(mix), lambda state: f"Adapter in use from the next reply: {state.label()}")
        elif verb == "unload" and len(rest) == 1:
            self.run(control.unload(rest[0]), lambda state: f"Unloaded {rest[0]}; in use: {state.label()}")
        elif verb == "merge" and not rest:
            self.merge()
        elif not words:
            state = control.state
            loaded = ", ".join(state.names) or "none loaded"
            self.screen.notify(f"Adapters: {loaded}; in use: {state.label()}. {USAGE}", timeout=10)
        else:
            self.screen.notify(f"/adapter: {USAGE}", severity="error", timeout=10)

    def load(self, path: str, name: str | None = None) -> None:
        control = self.control
        if control is not None:

            def loaded(info: AdapterInfo) -> str:
                return f"Loaded adapter {info.name} in {info.load_seconds:.2f} s; in use from the next reply"

            self.run(control.load(path, name), loaded)

    def use(self, name: str) -> None:
        """One adapter by name, "none", or a mix typed in the sidebar (`a=0.7,b=0.3`)."""
        control = self.control
        if control is None:
            return
        try:
            mix = parse_mix(name)
        except AdapterError as exc:
            self.screen.notify(str(exc), title="Adapter", severity="error")
            return
        self.run(control.use(mix), lambda state: f"Adapter in use from the next reply: {state.label()}")

    def unload(self, name: str) -> None:
        control = self.control
        if control is not None:
            self.run(control.unload(name), lambda state: f"Unloaded {name}; in use: {state.label()}")

    def merge(self) -> None:
        control = self.control
        if control is not None:
            self.run(
                control.merge(),
                lambda state: (
                    f"Merged {state.label()} into the weights: full speed; switching adapters now needs a reload"
                ),
            )

    def run(self, future: Future[Any], done: Callable[[Any], str]) -> None:
        self.screen.run_worker(self._finish(future, done), group="adapters")

    async def _finish(self, future: Future[Any], done: Callable[[Any], str]) -> bool:
        try:
            result = await answer(future)
        except Exception as exc:  # an AdapterError says what; anything else is one line too, never a traceback
            text = str(exc) if isinstance(exc, AdapterError) else f"adapter: {type(exc).__name__}: {one_line(exc)}"
            if not isinstance(exc, AdapterError):
                log.exception("adapter job failed")
            self.screen.notify(text, title="Adapter", severity="error", timeout=15)
            self.show()
            return False
        self.screen.notify(done(result))
        for warning in getattr(result, "warnings", ()):
            self.screen.notify(warning, severity="warning", timeout=10)
        self.show()
        return True

    async def model_loaded(self) -> None:
        """After a load: the adapters asked for (`--adapter`, or the open chat's), then shown."""
        await self.load_requested()
        if self.merge_requested and self.control is not None and self.control.state.active:
            self.merge_requested = False
            await self._finish(
                self.control.merge(), lambda state: f"Merged {state.label()}: switching adapters now needs a reload"
            )
        self.show()

    def before_reload(self, same_model: bool = True) -> None:
        """A reload (another dtype, say) frees the model and its adapters: the ones loaded now
        come back on the new one, with the same one in use (merged ones come back unmerged).
        Another model does not get them: they were made for this one."""
        control = self.control
        if control is None or self.requested:  # the open chat's adapters were asked for instead
            return
        state = control.state
        if not same_model:
            if state.names or state.merged:
                names = ", ".join(state.names + tuple(adapter.name for adapter in state.merged))
                self.screen.notify(
                    f"Adapters {names} stay behind with the model they were loaded on: load them again "
                    "(/adapter load) if they were made for the new one.",
                    timeout=10,
                )
            return
        self.requested = [(info.name, info.path) for info in state.loaded]
        self.requested += [(adapter.name, adapter.path) for adapter in state.merged]
        mix = state.active or tuple((adapter.name, adapter.weight) for adapter in state.merged)
        self.saved_mix = dict(mix) if self.requested else None

    async def load_requested(self) -> None:
        control = self.control
        requested, self.requested = self.requested, []
        mix, self.saved_mix = self.saved_mix, None
        if control is None:
            return
        for name, path in requested:
            if name in control.state.names:  # another adapter by that name: the chat's replaces it
                replaced = f"Unloaded the adapter loaded as {name}: the chat's {name} takes its place"

                def said(state: AdapterState, text: str = replaced) -> str:
                    return text

                if not await self._finish(control.unload(name), said):
                    return
            if not await self._finish(control.load(path, name), lambda info: f"Loaded adapter {info.name}"):
                return
        if mix is not None:
            await self._finish(control.use(mix), lambda state: f"Adapter in use from the next reply: {state.label()}")

    def offer_saved(self, replies: list[StoredMessage]) -> None:
        """Say which adapters the open chat's last reply was made with, when they are not the ones
        in use, and offer to load them (the key that loads the chat's model); never on its own."""
        recorded = next((m.meta.adapters for m in reversed(replies) if m.meta.metrics is not None), None) or ()
        control = self.control
        state = control.state if control is not None else AdapterState()
        self.saved = () if control is None or recorded == state.applied() else tuple(recorded)
        self.screen.refresh_bindings()
        if self.saved:
            key = self.screen.keymap.key("chat.load_saved_model")
            merged = any(adapter.merged for adapter in self.saved)
            how = "reload the model and merge it" if merged else "load it"
            self.screen.notify(
                f"This chat's last reply was made with adapter {describe(self.saved)} "
                f"({', '.join(a.path for a in self.saved)}). Press {key} to {how}.",
                title="Another adapter",
                timeout=20,
            )

    def ask_saved(self) -> None:
        """Queue the open chat's adapters: loaded after a reload of the model, or now."""
        control = self.control
        saved, self.saved = self.saved, ()
        state = control.state if control is not None else AdapterState()
        by_name = {info.name: info for info in state.loaded}
        self.requested = [
            (a.name, a.path)
            for a in saved
            if by_name.get(a.name) is None or by_name[a.name].sha256 != a.sha256 or a.merged
        ]
        self.saved_mix = {a.name: a.weight for a in saved}
        self.merge_requested = any(a.merged for a in saved)

    def show(self) -> None:
        control = self.control
        state = control.state if control is not None else AdapterState()
        shown = state.label() if state.loaded or state.merged else ""
        info = self.screen.engine.info
        if info is not None and info.name in info.served_adapters:  # a server's adapter, picked as its model
            shown = f"{info.name} (served)"
        self.screen.status.update_info(adapter=shown)
        self.screen.settings_panel.adapter_list.show(state, control is not None)
