"""The sidebar's "Adapters" section: the LoRA adapters on the model, the one in use (or none, or a
mix) to pick, one to unload, a folder or Hub id to load, and merging the one in use. It posts
messages up and is given the adapters' state down (`show`), like the rest of the sidebar."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Input, Select, Static

from tui.engine.adapters import NONE, AdapterState

MIX = "mix"  # the choice shown while a weighted mix (set with /adapter use a=0.5,b=0.5) is in use


class AdapterList(Vertical):
    DEFAULT_CSS = """
    AdapterList { height: auto; }
    AdapterList .adapter-row { height: auto; }
    AdapterList .adapter-name { width: 1fr; padding: 0 1; }
    AdapterList .adapter-unload { min-width: 3; width: 3; height: 1; border: none; }
    AdapterList #adapter-path { width: 1fr; }
    """

    @dataclass
    class UseRequested(Message):
        """Use this adapter alone from the next reply on ("none": the base model)."""

        name: str

    @dataclass
    class UnloadRequested(Message):
        name: str

    @dataclass
    class LoadRequested(Message):
        path: str

    class MergeRequested(Message):
        """Merge the adapter in use into the weights."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.state = AdapterState()
        self.available = False  # until the screen says the model in use takes adapters
        self._composed = False

    def compose(self) -> ComposeResult:
        yield Static("Adapters", classes="section-title")
        yield Select([("none (base model)", NONE)], value=NONE, allow_blank=False, id="adapter-use")
        yield Vertical(id="adapter-rows")
        with Horizontal(classes="adapter-row"):
            path = Input(placeholder="LoRA folder or Hub id", id="adapter-path")
            path.tooltip = "A LoRA adapter (a folder with adapter_config.json, or a Hub id) to load onto the model."
            yield path
            yield Button("Load", id="adapter-load")
        merge = Button("Merge into weights", id="adapter-merge")
        merge.tooltip = "Full speed for the adapter in use; switching adapters then needs a reload."
        yield merge

    def on_mount(self) -> None:
        self._composed = True
        self.show(self.state, self.available)

    def show(self, state: AdapterState, available: bool = True) -> None:
        """The adapters on the model now (before mounting, only remembered)."""
        self.state, self.available = state, available
        if not self._composed:
            return
        self.display = available  # a server's adapters are its model names (the model section)
        choices = [("none (base model)", NONE)] + [(name, name) for name in state.names]
        active = [name for name, _ in state.active]
        value = active[0] if len(active) == 1 and state.active[0][1] == 1.0 else (MIX if active else NONE)
        if value == MIX:
            choices.append((f"mix: {state.label()}", MIX))
        use = self.query_one("#adapter-use", Select)
        with self.prevent(Select.Changed):
            use.set_options(choices)
            use.value = value
        use.disabled = bool(state.merged) or not available
        rows = self.query_one("#adapter-rows", Vertical)
        rows.remove_children()
        widgets: list[Widget] = []
        for info in state.loaded:
            row = Horizontal(
                Static(f"{info.name} · r{info.rank} · {info.sha256[:8]}", classes="adapter-name", markup=False),
                Button("×", id=f"adapter-unload-{info.name}", classes="adapter-unload"),
                classes="adapter-row",
            )
            row.tooltip = info.path
            widgets.append(row)
        if state.merged:
            text = f"merged: {state.label()} (reload the model to switch)"
            widgets.append(Static(text, classes="adapter-name", markup=False))
        rows.mount_all(widgets)
        self.query_one("#adapter-merge", Button).disabled = not state.active or not available
        self.query_one("#adapter-load", Button).disabled = bool(state.merged) or not available

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if event.value not in (MIX, Select.BLANK):
            self.post_message(self.UseRequested(str(event.value)))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button.startswith("adapter-unload-"):
            event.stop()
            self.post_message(self.UnloadRequested(button.removeprefix("adapter-unload-")))
        elif button == "adapter-load":
            event.stop()
            path = self.query_one("#adapter-path", Input).value.strip()
            if path:
                self.post_message(self.LoadRequested(path))
        elif button == "adapter-merge":
            event.stop()
            self.post_message(self.MergeRequested())
