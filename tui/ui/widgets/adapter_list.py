"""The sidebar's "Adapters" section: the LoRA adapters on the model, the one in use (or none, or a
weighted mix typed as `a=0.7,b=0.3`) to pick, one to unload, a folder or Hub id to load, and
merging the one in use. It posts
messages up and is given the adapters' state down (`show`), like the rest of the sidebar."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Button, Input, Static

from tui.engine.adapters import AdapterState


class AdapterList(Vertical):
    DEFAULT_CSS = """
    AdapterList { height: auto; }
    AdapterList .adapter-row { height: auto; }
    AdapterList .adapter-use {
        width: 1fr; height: 1; border: none; min-width: 8; content-align: left middle; text-align: left;
        text-wrap: nowrap; text-overflow: ellipsis;
    }
    AdapterList .adapter-unload { min-width: 3; width: 3; height: 1; border: none; }
    AdapterList #adapter-rows { height: auto; }
    AdapterList #adapter-path, AdapterList #adapter-mix { width: 1fr; }
    AdapterList #adapter-load, AdapterList #adapter-use-mix { width: auto; min-width: 8; }
    """

    @dataclass
    class UseRequested(Message):
        """Use this adapter alone, or a mix (`a=0.7,b=0.3`), from the next reply on ("none": the
        base model)."""

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
        yield Vertical(id="adapter-rows")
        with Horizontal(classes="adapter-row"):
            path = Input(placeholder="LoRA folder or Hub id", id="adapter-path")
            path.tooltip = "A LoRA adapter (a folder with adapter_config.json, or a Hub id) to load onto the model."
            yield path
            yield Button("Load", id="adapter-load")
        with Horizontal(classes="adapter-row", id="adapter-mix-row"):
            mix = Input(placeholder="mix: a=0.7,b=0.3", id="adapter-mix")
            mix.tooltip = (
                "A weighted mix of the loaded adapters (peft's add_weighted_adapter): name=weight, "
                "comma-separated; one adapter with a weight scales it."
            )
            yield mix
            yield Button("Mix", id="adapter-use-mix")
        merge = Button("Merge into weights", id="adapter-merge")
        merge.tooltip = "Full speed for the adapter in use; switching adapters then needs a reload."
        yield merge

    def on_mount(self) -> None:
        self._composed = True
        self.show(self.state, self.available)

    def show(self, state: AdapterState, available: bool = True) -> None:
        """The adapters on the model now, the ones in use marked ● (before mounting, only remembered)."""
        self.state, self.available = state, available
        if not self._composed:
            return
        self.display = available  # a server's adapters are its model names (the model section)
        rows = self.query_one("#adapter-rows", Vertical)
        rows.remove_children()
        weights = dict(state.active)
        widgets: list[Widget] = []
        if state.merged:
            text = f"merged: {state.label()} (reload the model to switch)"
            widgets.append(Static(text, markup=False))
        else:
            none = Button(f"{'○' if weights else '●'} none (base model)", name="use:none", classes="adapter-use")
            widgets.append(none)
        for info in state.loaded:
            weight = weights.get(info.name)
            mark = "○" if weight is None else "●" if weight == 1.0 else f"● ×{weight:g}"
            use = Button(f"{mark} {info.name} · r{info.rank} · {info.sha256[:8]}", name=f"use:{info.name}")
            use.add_class("adapter-use")
            use.tooltip = f"{info.path}: use it alone from the next reply on"
            row = Horizontal(use, Button("×", name=f"unload:{info.name}", classes="adapter-unload"))
            row.add_class("adapter-row")
            widgets.append(row)
        rows.mount_all(widgets)
        self.query_one("#adapter-mix-row").display = bool(state.loaded) and not state.merged
        mix = self.query_one("#adapter-mix", Input)
        if not mix.has_focus:  # what the user is typing stays
            mix.value = mix_text(state)
        self.query_one("#adapter-merge", Button).disabled = not state.active or not available
        self.query_one("#adapter-load", Button).disabled = bool(state.merged) or not available

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the path field loads, in the mix field mixes, as their buttons do."""
        button = {"adapter-path": "#adapter-load", "adapter-mix": "#adapter-use-mix"}.get(event.input.id or "")
        if button:
            event.stop()
            self.query_one(button, Button).press()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        # the rows are made again at each show(): they are told apart by name (ids would collide
        # with the rows being removed)
        button = event.button.id or ""
        kind, _, name = (event.button.name or "").partition(":")
        if kind == "use":
            event.stop()
            self.post_message(self.UseRequested(name))
        elif kind == "unload":
            event.stop()
            self.post_message(self.UnloadRequested(name))
        elif button == "adapter-load":
            event.stop()
            path = self.query_one("#adapter-path", Input).value.strip()
            if path:
                self.post_message(self.LoadRequested(path))
        elif button == "adapter-use-mix":
            event.stop()
            text = self.query_one("#adapter-mix", Input).value.strip()
            if text:
                self.post_message(self.UseRequested(text))
        elif button == "adapter-merge":
            event.stop()
            self.post_message(self.MergeRequested())


def mix_text(state: AdapterState) -> str:
    """The mix field's text: the mix in use when it is one, else the loaded adapters in equal parts
    (the usual start for a blend)."""
    if len(state.active) > 1 or any(weight != 1.0 for _, weight in state.active):
        return ",".join(f"{name}={weight:g}" for name, weight in state.active)
    names = state.names
    return ",".join(f"{name}={1 / len(names):.2g}" for name in names) if names else ""
