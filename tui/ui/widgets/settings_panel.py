"""The settings sidebar, built from the engine's one table of parameter specs.

It is given the values it shows (`show_*`, attributes down) and posts what the user changes
(messages up): generation values apply to the next reply at once (an invalid value shows an
inline error and the last valid value stays in use), model options reload on Apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static, Switch, TextArea

from tui.engine.loading import ModelInfo
from tui.engine.settings import (
    FORM_SPECS,
    LOAD_CHOICES,
    SPECS_BY_NAME,
    GenerationSettings,
    LoadSettings,
    SettingsError,
    format_value,
)
from tui.engine.sources import DEFAULT_MODEL_NAME
from tui.ui.widgets.adapter_list import AdapterList

SLOW_HERE = {"dtype:float16": "slow on CPU"}


class SettingsPanel(VerticalScroll):
    DEFAULT_CSS = """
    SettingsPanel {
        width: 42;
        dock: right;
        background: $panel;
        border-left: vkey $foreground 20%;
        padding: 0 1;
        #model-info { color: $text-muted; }
        .param-row { height: auto; }
        /* the full name and its help are in the tooltip */
        .param-label { width: 21; padding: 1 0 0 0; text-wrap: nowrap; text-overflow: ellipsis; }
        .param-label.short { width: 14; }
        .param-input { width: 1fr; }
        .preset-row { height: auto; }
        .preset-row Input { width: 1fr; }
        .field-error { color: $error; }
        Select { width: 100%; }
        /* beside its label: the rest of the row, border and arrow included */
        .param-row Select { width: 1fr; }
        #load-unavailable { color: $text-muted; }
        #apply { width: 100%; margin: 1 0 0 0; }
        #load-model-row { height: auto; }
        SelectOverlay, SelectCurrent Static#label { text-wrap: nowrap; text-overflow: ellipsis; }
        #load-model { width: 1fr; }
        #pick-model { width: auto; min-width: 7; margin: 1 1 0 1; }
        #system-prompt { height: 8; }
        #changed-settings { height: auto; }
        .changed-row { height: 1; }
        .changed-label { width: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
        .remove-setting { width: 3; min-width: 3; height: 1; border: none; padding: 0; }
    }
    """

    @dataclass
    class GenerationChanged(Message):
        """The user changed generation values (each valid on its own)."""

        updates: dict[str, Any]

    @dataclass
    class GenerationReset(Message):
        """The user removed a setting: back to its default."""

        key: str

    @dataclass
    class SystemPromptChanged(Message):
        text: str

    @dataclass
    class ReloadRequested(Message):
        """Apply: load the model with these options."""

        settings: LoadSettings

    class ModelPickRequested(Message):
        """The model field's Pick button: open the model picker; its choice fills the field."""

    @dataclass
    class PresetChosen(Message):
        name: str

    @dataclass
    class PresetSaved(Message):
        """Save the generation values in use as a preset called `name`."""

        name: str

    def __init__(
        self,
        generation: GenerationSettings,
        system_prompt: str,
        load_settings: LoadSettings,
        preset_names: list[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.generation = generation
        self.system_prompt = system_prompt
        self.load_settings = load_settings
        self.preset_names = preset_names
        self.model_info: ModelInfo | None = None
        self.busy = False
        self.ready = False  # True once its fields show the values above
        self._unavailable: dict[str, str] = {}
        self.adapter_list = AdapterList(id="adapters")  # given the adapters' state down by the screen

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield from self._generation_section()
        yield Static("System prompt", classes="section-title")
        yield TextArea("", id="system-prompt", soft_wrap=True)
        yield from self._model_section()
        yield self.adapter_list

    def _generation_section(self) -> ComposeResult:
        yield Static("Generation", classes="section-title")
        with Horizontal(classes="preset-row"):
            yield Select([(n, n) for n in self.preset_names], prompt="preset", id="preset")
        values = self.generation.values  # built with the values in use: no change events at mount
        for spec in FORM_SPECS:
            tooltip = f"{spec.help} Range: {spec.range_text()}. Default: {format_value(spec.default)}."
            with Horizontal(classes="param-row"):
                label = Label(spec.name, classes="param-label")
                label.tooltip = tooltip
                yield label
                field: Switch | Input
                if spec.type is bool:
                    field = Switch(value=bool(values[spec.name]), id=f"param-{spec.name}")
                else:
                    field = Input(format_value(values[spec.name]), id=f"param-{spec.name}", classes="param-input")
                field.tooltip = tooltip
                yield field
            yield Static("", id=f"error-{spec.name}", classes="field-error")
        with Horizontal(classes="preset-row"):
            yield Input(placeholder="preset name", id="preset-name")
            yield Button("Save preset", id="save-preset")
        changed = Static("Changed from the defaults", classes="section-title", id="changed-title")
        changed.tooltip = (
            "Every setting in effect that is not chatui's default, including GenerationConfig "
            "fields without a field above (/set num_beams=2): × puts one back to its default."
        )
        yield changed
        yield Vertical(id="changed-settings")

    def _model_section(self) -> ComposeResult:
        yield Static("Model", classes="section-title")
        yield Static("loading…", id="model-info", markup=False)
        endpoint = Input(placeholder="server URL (optional)", id="load-endpoint")
        endpoint.tooltip = (
            "An OpenAI-compatible server (transformers serve, vLLM, llama-server, Ollama), e.g. "
            "http://localhost:8000/v1; empty: the model runs here."
        )
        yield endpoint
        yield Select([], prompt="served models", id="load-served")
        with Horizontal(id="load-model-row"):
            model = Input(placeholder="Hub id, folder, .gguf", id="load-model")
            model.tooltip = f"The model to load; empty: the bundled {DEFAULT_MODEL_NAME}."
            yield model
            pick = Button("Pick…", id="pick-model", compact=True)
            pick.tooltip = "Choose from the models on this machine, or download one (the model picker)"
            yield pick
        for name, choices in LOAD_CHOICES.items():
            with Horizontal(classes="param-row"):
                yield Label(name.replace("_implementation", "").replace("_", " "), classes="param-label short")
                yield Select([(c, c) for c in choices], value=choices[0], allow_blank=False, id=f"load-{name}")
        draft = Input(placeholder="draft model (optional)", id="load-draft")
        draft.tooltip = (
            "A small model with the same tokenizer that drafts tokens for the model to check (assisted decoding)."
        )
        yield draft
        with Horizontal(classes="param-row"):
            label = Label("torch.compile", classes="param-label short")
            label.tooltip = "static KV cache + torch.compile, compiled in the background after load"
            yield label
            yield Switch(value=False, id="load-compile")
        yield Static("", id="load-unavailable", markup=False)
        yield Static("", id="load-error", classes="field-error")
        yield Button("Apply (reload)", id="apply", variant="primary")

    def on_mount(self) -> None:
        self.call_after_refresh(self._catch_up)  # once the fields (and their own parts) are mounted

    def _catch_up(self) -> None:
        """Mounted (after the first frame): show the values given so far."""
        self.ready = True
        self.show_generation(self.generation)
        self.show_system_prompt(self.system_prompt)
        self.set_presets(self.preset_names)
        if self.model_info is not None:
            self.show_model(self.model_info, self.load_settings)
        else:
            self.show_load(self.load_settings)
        self.set_busy(self.busy)
        for field in self.query(".field-error"):
            field.display = False
        if self.model_info is None or not self.model_info.available_models:
            self.query_one("#load-served", Select).display = False

    # -- showing values (the screen calls these; before mounting they only remember) ------------

    def show_generation(self, settings: GenerationSettings) -> None:
        self.generation = settings
        if not self.ready:
            return
        for spec in FORM_SPECS:
            value = settings.values[spec.name]
            if spec.type is bool:
                switch = self.query_one(f"#param-{spec.name}", Switch)
                if switch.value != value:
                    switch.value = bool(value)
            else:
                field = self.query_one(f"#param-{spec.name}", Input)
                if self._parsed(spec.name, field.value) != value:
                    field.value = format_value(value)
            self.show_field_error(spec.name, "")
        self._show_changed(settings)

    def _show_changed(self, settings: GenerationSettings) -> None:
        box = self.query_one("#changed-settings", Vertical)
        box.remove_children()
        rows = [
            Horizontal(
                Label(f"{key} = {format_value(value)}", classes="changed-label", markup=False),
                Button("×", name=key, classes="remove-setting"),
                classes="changed-row",
            )
            for key, value in settings.changed().items()
        ]
        box.mount_all(rows or [Static("none", classes="muted")])

    @on(Button.Pressed, ".remove-setting")
    def remove_setting(self, event: Button.Pressed) -> None:
        if event.button.name:
            self.post_message(self.GenerationReset(event.button.name))

    def show_system_prompt(self, text: str) -> None:
        self.system_prompt = text
        if self.ready:
            area = self.query_one("#system-prompt", TextArea)
            if area.text != text:
                area.load_text(text)

    def show_load(self, settings: LoadSettings) -> None:
        self.load_settings = settings
        if not self.ready:
            return
        self.query_one("#load-model", Input).value = settings.model or ""
        self.query_one("#load-endpoint", Input).value = settings.endpoint or ""
        self.query_one("#load-draft", Input).value = settings.draft_model or ""
        self.query_one("#load-compile", Switch).value = settings.compile
        for name in LOAD_CHOICES:
            self.query_one(f"#load-{name}", Select).value = getattr(settings, name)

    def show_model(self, info: ModelInfo, settings: LoadSettings) -> None:
        self.model_info, self.load_settings = info, settings
        if not self.ready:
            return
        if info.remote:
            lines = [
                info.name,
                f"on {info.source}",
                f"{len(info.available_models)} models served · connected in {info.load_seconds:.1f} s",
            ]
        else:
            lines = [
                info.name,
                f"{info.parameters / 1e6:,.0f}M params · {info.footprint_bytes / 2**20:,.0f} MB",
                f"{info.device} · {info.dtype} · {info.quantization} · {info.attn_implementation}",
                f"context {info.context_size:,} · loaded in {info.load_seconds:.1f} s",
            ]
        served = self.query_one("#load-served", Select)
        served.set_options([(served_label(name, info.served_adapters), name) for name in info.available_models])
        served.display = bool(info.available_models)
        if info.draft:
            lines.append(f"draft: {info.draft} (assisted decoding)")
        self.query_one("#model-info", Static).update("\n".join(lines))
        self._unavailable = dict(info.unavailable)
        for name, choices in LOAD_CHOICES.items():
            select = self.query_one(f"#load-{name}", Select)
            options = []
            for choice in choices:
                reason = self._unavailable.get(f"{name}:{choice}")
                slow = SLOW_HERE.get(f"{name}:{choice}") if info.device == "cpu" else None
                # the mark first: a dropdown too narrow cuts the end of a line, never the mark
                label = f"✗ {choice}" if reason else f"{choice} ({slow})" if slow else choice
                options.append((label, choice))
            select.set_options(options)
        # Why the ✗ options cannot work here, in full (a dropdown's width cannot hold a reason).
        reasons = [f"✗ {key.partition(':')[2]}: {reason}" for key, reason in self._unavailable.items()]
        self.query_one("#load-unavailable", Static).update("\n".join(reasons))
        self.show_load(settings)

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        if not self.ready:
            return
        self.query_one("#apply", Button).disabled = busy
        self.query_one("#apply", Button).label = "Loading…" if busy else "Apply (reload)"

    def show_field_error(self, name: str, text: str) -> None:
        if not self.ready:
            return
        widget = self.query_one(f"#error-{name}", Static)
        widget.update(text)
        widget.display = bool(text)

    def _parsed(self, name: str, raw: str) -> Any:
        try:
            return SPECS_BY_NAME[name].parse(raw)
        except SettingsError:
            return object()  # never equal to a valid value

    # -- editing --------------------------------------------------------------------------------

    @on(Input.Changed, ".param-input")
    def param_changed(self, event: Input.Changed) -> None:
        if event.value != event.input.value:
            return  # a stale event: the field has changed again since
        name = (event.input.id or "").removeprefix("param-")
        try:
            value = SPECS_BY_NAME[name].parse(event.value)
        except SettingsError as exc:
            self.show_field_error(name, str(exc))
            return
        self.show_field_error(name, "")
        if value != self.generation.values[name]:
            self.post_message(self.GenerationChanged({name: value}))

    @on(Input.Blurred, ".param-input")
    def param_blurred(self, event: Input.Blurred) -> None:
        name = (event.input.id or "").removeprefix("param-")
        current = self.generation.values[name]
        if self._parsed(name, event.input.value) != current:
            event.input.value = format_value(current)  # back to the value in use
            self.show_field_error(name, "")

    @on(Switch.Changed)
    def switch_changed(self, event: Switch.Changed) -> None:
        if event.value != event.switch.value or not (event.switch.id or "").startswith("param-"):
            return  # a stale event, or a model option (applied with the Apply button)
        name = (event.switch.id or "").removeprefix("param-")
        if event.value != self.generation.values.get(name):
            self.post_message(self.GenerationChanged({name: event.value}))

    @on(TextArea.Changed, "#system-prompt")
    def system_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.text != self.system_prompt:
            self.system_prompt = event.text_area.text
            self.post_message(self.SystemPromptChanged(self.system_prompt))

    @on(Select.Changed, "#load-served")
    def served_model_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.query_one("#load-model", Input).value = event.value  # Apply connects to it

    @on(Button.Pressed, "#pick-model")
    def pick_model(self) -> None:
        self.post_message(self.ModelPickRequested())

    def choose_model(self, model: str | None, endpoint: str | None) -> None:
        """The picker's choice in the model fields, for Apply to load with the options above it."""
        self.query_one("#load-model", Input).value = model or ""
        self.query_one("#load-endpoint", Input).value = endpoint or ""
        self.query_one("#load-model", Input).focus()

    @on(Select.Changed, "#preset")
    def preset_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.post_message(self.PresetChosen(event.value))

    def set_presets(self, names: list[str]) -> None:
        self.preset_names = list(names)
        if self.ready:
            self.query_one("#preset", Select).set_options([(n, n) for n in self.preset_names])

    @on(Button.Pressed, "#save-preset")
    def save_preset(self) -> None:
        name = self.query_one("#preset-name", Input).value.strip()
        if not name:
            self.notify("Give the preset a name first.", severity="warning")
            return
        self.post_message(self.PresetSaved(name))

    @on(Button.Pressed, "#apply")
    def apply_load(self) -> None:
        values: dict[str, Any] = {
            "model": self.query_one("#load-model", Input).value.strip() or None,
            "endpoint": self.query_one("#load-endpoint", Input).value.strip() or None,
            "draft_model": self.query_one("#load-draft", Input).value.strip() or None,
            "compile": self.query_one("#load-compile", Switch).value,
        }
        for name in LOAD_CHOICES:
            values[name] = self.query_one(f"#load-{name}", Select).value
            reason = self._unavailable.get(f"{name}:{values[name]}")
            if reason:
                self._show_load_error(f"{name} {values[name]} cannot work here: {reason}")
                return
        try:
            settings = self.load_settings.replace(**values)
        except SettingsError as exc:
            self._show_load_error(str(exc))
            return
        self._show_load_error("")
        self.post_message(self.ReloadRequested(settings))

    def _show_load_error(self, text: str) -> None:
        widget = self.query_one("#load-error", Static)
        widget.update(text)
        widget.display = bool(text)


def served_label(name: str, adapters: dict[str, str]) -> str:
    """A server's model as the dropdown lists it: a LoRA adapter it serves says on what."""
    base = adapters.get(name)
    return f"{name} (LoRA on {base.rstrip('/').rpartition('/')[2]})" if base else name
