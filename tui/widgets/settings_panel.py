"""The settings sidebar, built from the engine's one table of parameter specs.

Generation values apply to the next reply at once (no reload); an invalid value shows an inline
error and the last valid value stays in use. Model options reload in the background on Apply.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static, Switch, TextArea

from tui.engine.settings import (
    ATTENTION_IMPLEMENTATIONS,
    BUILTIN_PRESETS,
    DEVICES,
    DTYPES,
    PARAM_SPECS,
    QUANTIZATIONS,
    SPECS_BY_NAME,
    GenerationSettings,
    LoadSettings,
    SettingsError,
    format_value,
)

LOAD_CHOICES = {
    "dtype": DTYPES,
    "device": DEVICES,
    "quantization": QUANTIZATIONS,
    "attn_implementation": ATTENTION_IMPLEMENTATIONS,
}
SLOW_HERE = {"dtype:float16": "slow on CPU"}


class SettingsPanel(VerticalScroll):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.user_presets: dict[str, dict[str, Any]] = {}
        self.ready = False  # True once it shows the app's state
        self._unavailable: dict[str, str] = {}

    # -- layout ---------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield from self._generation_section()
        yield Static("System prompt", classes="section-title")
        yield TextArea("", id="system-prompt", soft_wrap=True)
        yield from self._model_section()

    def _generation_section(self) -> ComposeResult:
        yield Static("Generation", classes="section-title")
        with Horizontal(classes="preset-row"):
            yield Select([(n, n) for n in BUILTIN_PRESETS], prompt="preset", id="preset")
        values = self.app.generation.values  # built with the values in use: no change events at mount
        for spec in PARAM_SPECS:
            tooltip = f"{spec.help} Range: {spec.range_text()}. Default: {format_value(spec.default)}."
            with Horizontal(classes="param-row"):
                label = Label(spec.name, classes="param-label")
                label.tooltip = tooltip
                yield label
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

    def _model_section(self) -> ComposeResult:
        yield Static("Model", classes="section-title")
        yield Static("loading…", id="model-info", markup=False)
        yield Input(placeholder="model id or path (default: SmolLM2-135M-Instruct)", id="load-model")
        for name, choices in LOAD_CHOICES.items():
            with Horizontal(classes="param-row"):
                yield Label(name.replace("_implementation", "").replace("_", " "), classes="param-label short")
                yield Select([(c, c) for c in choices], value=choices[0], allow_blank=False, id=f"load-{name}")
        yield Input(placeholder="draft model (assisted decoding, optional)", id="load-draft")
        with Horizontal(classes="param-row"):
            label = Label("torch.compile", classes="param-label short")
            label.tooltip = "static KV cache + torch.compile, compiled in the background after load"
            yield label
            yield Switch(value=False, id="load-compile")
        yield Static("", id="load-error", classes="field-error")
        yield Button("Apply (reload)", id="apply", variant="primary")

    def on_mount(self) -> None:
        self.call_after_refresh(self._catch_up)  # once the fields (and their own parts) are mounted

    def _catch_up(self) -> None:
        """Mounted after the first frame: catch up with the app's state."""
        app = self.app
        self.show_generation(app.generation)
        self.show_system_prompt(app.system_prompt)
        self.set_user_presets(app.config.presets)
        if app.model_info is not None:
            self.show_model(app.model_info, app.load_settings)
        else:
            self.show_load(app.load_settings)
        self.set_busy(app.state == "loading")
        for field in self.query(".field-error"):
            field.display = False
        self.ready = True

    # -- showing values -------------------------------------------------------------------------

    def show_generation(self, settings: GenerationSettings) -> None:
        for spec in PARAM_SPECS:
            value = settings.values[spec.name]
            if spec.type is bool:
                switch = self.query_one(f"#param-{spec.name}", Switch)
                if switch.value != value:
                    switch.value = bool(value)
            else:
                field = self.query_one(f"#param-{spec.name}", Input)
                if self._parsed(spec.name, field.value) != value:
                    field.value = format_value(value)
            self._show_error(spec.name, "")

    def show_system_prompt(self, text: str) -> None:
        area = self.query_one("#system-prompt", TextArea)
        if area.text != text:
            area.load_text(text)

    def show_load(self, settings: LoadSettings) -> None:
        self.query_one("#load-model", Input).value = settings.model or ""
        self.query_one("#load-draft", Input).value = settings.draft_model or ""
        self.query_one("#load-compile", Switch).value = settings.compile
        for name in LOAD_CHOICES:
            self.query_one(f"#load-{name}", Select).value = getattr(settings, name)

    def show_model(self, info: Any, settings: LoadSettings) -> None:
        lines = [
            info.name,
            f"{info.parameters / 1e6:,.0f}M params · {info.footprint_bytes / 2**20:,.0f} MB",
            f"{info.device} · {info.dtype} · {info.quantization} · {info.attn_implementation}",
            f"context {info.context_size:,} · loaded in {info.load_seconds:.1f} s",
        ]
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
                label = f"{choice} (unavailable: {reason})" if reason else f"{choice} ({slow})" if slow else choice
                options.append((label, choice))
            select.set_options(options)
        self.show_load(settings)

    def set_busy(self, busy: bool) -> None:
        self.query_one("#apply", Button).disabled = busy
        self.query_one("#apply", Button).label = "Loading…" if busy else "Apply (reload)"

    def _show_error(self, name: str, text: str) -> None:
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
        name = event.input.id.removeprefix("param-")
        try:
            value = SPECS_BY_NAME[name].parse(event.value)
        except SettingsError as exc:
            self._show_error(name, str(exc))
            return
        if value == self.app.generation.values[name]:
            self._show_error(name, "")
            return
        self._show_error(name, self.app.set_generation({name: value}) or "")

    @on(Input.Blurred, ".param-input")
    def param_blurred(self, event: Input.Blurred) -> None:
        name = event.input.id.removeprefix("param-")
        current = self.app.generation.values[name]
        if self._parsed(name, event.input.value) != current:
            event.input.value = format_value(current)  # back to the value in use
            self._show_error(name, "")

    @on(Switch.Changed)
    def switch_changed(self, event: Switch.Changed) -> None:
        if event.value != event.switch.value or not (event.switch.id or "").startswith("param-"):
            return  # a stale event, or a model option (applied with the Apply button)
        name = event.switch.id.removeprefix("param-")
        if event.value != self.app.generation.values.get(name):
            self._show_error(name, self.app.set_generation({name: event.value}) or "")

    @on(TextArea.Changed, "#system-prompt")
    def system_changed(self, event: TextArea.Changed) -> None:
        self.app.system_prompt = event.text_area.text

    @on(Select.Changed, "#preset")
    def preset_chosen(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):
            self.apply_preset(event.value)

    def preset_names(self) -> list[str]:
        return list(BUILTIN_PRESETS) + [n for n in self.user_presets if n not in BUILTIN_PRESETS]

    def apply_preset(self, name: str) -> None:
        values = self.user_presets.get(name) or BUILTIN_PRESETS.get(name)
        if values is None:
            self.app.notify(f"No preset named {name!r}.", severity="error")
            return
        error = self.app.set_generation(values)
        if error:
            self.app.notify(f"Preset {name}: {error}", severity="error")
        else:
            self.app.notify(f"Preset {name} in use.")

    def set_user_presets(self, presets: dict[str, dict[str, Any]]) -> None:
        self.user_presets = dict(presets)
        self.query_one("#preset", Select).set_options([(n, n) for n in self.preset_names()])

    @on(Button.Pressed, "#save-preset")
    def save_preset(self) -> None:
        name = self.query_one("#preset-name", Input).value.strip()
        if not name:
            self.app.notify("Give the preset a name first.", severity="warning")
            return
        self.user_presets[name] = self.app.generation.as_dict()
        self.query_one("#preset", Select).set_options([(n, n) for n in self.preset_names()])
        self.app.save_user_presets(self.user_presets)

    @on(Button.Pressed, "#apply")
    def apply_load(self) -> None:
        values: dict[str, Any] = {"model": self.query_one("#load-model", Input).value.strip() or None,
                                  "draft_model": self.query_one("#load-draft", Input).value.strip() or None,
                                  "compile": self.query_one("#load-compile", Switch).value}
        for name in LOAD_CHOICES:
            values[name] = self.query_one(f"#load-{name}", Select).value
            reason = self._unavailable.get(f"{name}:{values[name]}")
            if reason:
                self._show_load_error(f"{name} {values[name]} cannot work here: {reason}")
                return
        try:
            settings = self.app.load_settings.replace(**values)
        except SettingsError as exc:
            self._show_load_error(str(exc))
            return
        self._show_load_error("")
        self.app.apply_load_settings(settings)

    def _show_load_error(self, text: str) -> None:
        widget = self.query_one("#load-error", Static)
        widget.update(text)
        widget.display = bool(text)
