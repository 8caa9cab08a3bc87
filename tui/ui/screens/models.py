"""The model picker (ctrl+l, `/model`, the palette): every model of the catalogue as a row with
its facts and this machine's estimates, filtered fuzzily as the user types; Enter loads the
highlighted one (or offers to download a Hub id that is not in the cache); a model in the
Hugging Face cache can be deleted, with its size, after a confirmation. Models that will not fit
are marked before the user tries. The catalogue is read on a thread (`core/catalogue.py`)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.fuzzy import Matcher
from textual.widgets import DataTable, Input, Static

from tui.core.catalogue import CatalogueEntry, ago, parameters_text
from tui.text import inert
from tui.ui.actions import BY_ID, Keymap, bindings
from tui.ui.screens.modal import Modal

CatalogueLoader = Callable[[], tuple[list[CatalogueEntry], list[str]]]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
# Fixed widths: the table is the same whatever the rows hold, and fits the picker at 120 columns.
COLUMN_WIDTHS = {
    "Model": 26,
    "Arch": 8,
    "Params": 6,
    "Dtype": 8,
    "Size": 5,
    "Chat": 4,
    "Kind": 6,
    "Used": 8,
    "Memory": 14,
    "tok/s": 6,
}
COLUMNS = tuple(COLUMN_WIDTHS)
DOWNLOAD_ROW = "download:"


@dataclass(frozen=True)
class PickerChoice:
    entry: CatalogueEntry | None  # the model to load
    download: str = ""  # or a Hub id to download first


def size_text(count: int) -> str:
    if count <= 0:
        return "?"
    return f"{count / 2**30:.1f}G" if count >= 2**30 else f"{count / 2**20:.0f}M"


def row_cells(entry: CatalogueEntry, now: float) -> tuple[Text, ...]:
    facts, guess = entry.facts, entry.estimate
    name = Text(inert(entry.name), style="bold")
    if guess is not None and not guess.fits:  # first, so a narrow table still shows it
        name = Text.assemble(("✗ ", "bold red"), name)
    if entry.kind == "hub" and not entry.in_hub_cache:
        name.append(" ↓", style="dim")  # not here: Enter offers the download
    if facts.adapters:
        name.append(f" +{len(facts.adapters)} adapter{'s' if len(facts.adapters) > 1 else ''}", style="dim")
    if entry.kind == "remote":
        memory, speed = Text("server", style="dim"), Text("")
    elif guess is None:
        memory, speed = Text("?", style="dim"), Text("?", style="dim")
    else:
        fits = guess.fits
        memory = Text(f"{size_text(guess.memory_needed)}/{size_text(guess.memory_free)}")
        memory.append(" ok" if fits else " ✗ too big", style="green" if fits else "bold red")
        speed = Text(f"~{guess.tok_s:.0f}" if guess.tok_s else "?")
    return (
        name,
        Text(inert(facts.architecture.removesuffix("ForCausalLM") or "?")),
        Text(parameters_text(facts.parameters)),
        Text(facts.dtype or "?"),
        Text(size_text(facts.size_bytes)),
        chat_cell(entry),
        Text(facts.modality if entry.kind != "remote" else "remote"),
        Text(ago(entry.last_used, now) if entry.last_used else "never", style="dim"),
        memory,
        speed,
    )


def chat_cell(entry: CatalogueEntry) -> Text:
    if entry.kind == "remote":
        return Text("?", style="dim")  # a server does not say whether its model has a chat template
    template = entry.facts.chat_template
    return Text("chat" if template else "base", style="" if template else "yellow")


def matches(query: str, entries: list[CatalogueEntry]) -> list[CatalogueEntry]:
    """The entries whose name fits `query` as a fuzzy match, best first (all when it is empty)."""
    if not query.strip():
        return list(entries)
    matcher = Matcher(query.strip())
    scored = [(matcher.match(entry.name), index, entry) for index, entry in enumerate(entries)]
    return [entry for score, _, entry in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0]


class ModelPicker(Modal[PickerChoice | None]):
    """Needs an app with `keymap` (tui.ui.actions.Keymap). `load` gives the catalogue; `now`
    pins the "last used" column (snapshots)."""

    BINDINGS = bindings("models")
    HINTED = ("models.pick", "models.delete", "models.close")

    def __init__(
        self,
        load: CatalogueLoader,
        keymap: Keymap,
        now: float | None = None,
        in_use: str | None = None,
        pick_says: str = "",
    ) -> None:
        super().__init__()
        self.load, self.keymap, self.now = load, keymap, now
        self.pick_says = pick_says  # what Enter does when not "load" (the sidebar's Pick: "choose")
        self.in_use = in_use  # the model loaded now (its id or path): deleting it says so
        self.entries: list[CatalogueEntry] = []
        self.shown: list[CatalogueEntry] = []
        self.problems: list[str] = []

    def compose_dialog(self) -> ComposeResult:
        with Vertical(id="models", classes="dialog"):
            yield Static("Models", classes="section-title")
            yield Input(placeholder="type to filter, or a Hub id to download", id="models-filter")
            table: DataTable[Text] = DataTable(id="models-table", cursor_type="row", zebra_stripes=True)
            for label, width in COLUMN_WIDTHS.items():
                table.add_column(label, width=width)
            yield table
            yield Static("reading the models…", id="models-detail", classes="muted", markup=False)
            yield Static(
                " · ".join(f"{self.keymap.key(i)}: {self.hint(i)}" for i in self.HINTED),
                classes="muted dialog-keys",
                markup=False,
            )

    def hint(self, action_id: str) -> str:
        if action_id == "models.pick" and self.pick_says:
            return self.pick_says
        return BY_ID[action_id].title.lower()

    def on_mount(self) -> None:
        self.read_catalogue()

    @work(thread=True, exclusive=True)
    def read_catalogue(self) -> None:
        entries, problems = self.load()
        self.app.call_from_thread(self.show_entries, entries, problems)

    def show_entries(self, entries: list[CatalogueEntry], problems: list[str]) -> None:
        self.entries, self.problems = entries, problems
        self.refilter()

    @property
    def query_text(self) -> str:
        return self.query_one("#models-filter", Input).value.strip()

    def refilter(self) -> None:
        query = self.query_text
        self.shown = matches(query, self.entries)
        table = self.query_one(DataTable)
        table.clear()
        if _HUB_ID.match(query) and not any(e.model == query for e in self.entries):
            cells = [
                Text(f"↓ {query}", style="bold"),  # the whole id in its cell; what Enter does beside it
                Text("download from the Hub", style="dim"),
                *(Text("") for _ in COLUMNS[2:]),
            ]
            table.add_row(*cells, key=DOWNLOAD_ROW + query)
        now = self.now if self.now is not None else time.time()
        for index, entry in enumerate(self.shown):
            table.add_row(*row_cells(entry, now), key=str(index))
        self.describe_highlighted()

    def highlighted(self) -> tuple[CatalogueEntry | None, str]:
        """The entry under the cursor, or the Hub id its download row offers."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return None, ""
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or ""
        if key.startswith(DOWNLOAD_ROW):
            return None, key.removeprefix(DOWNLOAD_ROW)
        return self.shown[int(key)], ""

    def describe_highlighted(self) -> None:
        entry, download = self.highlighted()
        detail = self.query_one("#models-detail", Static)
        if download:
            detail.update(f"Enter lists {download}'s files and sizes on the Hub before anything is downloaded.")
        elif entry is not None:
            detail.update(self.describe(entry))
        elif self.entries:
            detail.update("no model matches; a Hub id (org/name) offers its download")
        else:
            detail.update(" · ".join(self.problems) or "no models yet: type a Hub id (org/name) to download one")

    def describe(self, entry: CatalogueEntry) -> str:
        facts, guess = entry.facts, entry.estimate
        if entry.in_hub_cache:
            snapshot = Path(entry.path).parent if entry.kind == "gguf" else Path(entry.path)
            where = f"in the Hugging Face cache, revision {snapshot.name[:8]}"
        else:
            where = entry.endpoint or entry.path or "on the Hub, not downloaded"
        parts = [f"{where} ({' + '.join(entry.origins)})"]
        if guess is not None:
            verdict = "fits" if guess.fits else "will NOT fit"
            parts.append(
                f"{guess.dtype}{'' if guess.quantization == 'none' else ' ' + guess.quantization}: needs "
                f"{size_text(guess.memory_needed)}, {size_text(guess.memory_free)} free, {verdict}; "
                f"{size_text(guess.bytes_per_token)} read per token"
            )
        if facts.adapters:
            parts.append("adapters: " + ", ".join(facts.adapters))
        if facts.problem:
            parts.append(facts.problem)
        return " · ".join(parts)

    @on(Input.Changed, "#models-filter")
    def filter_changed(self) -> None:
        self.refilter()

    @on(DataTable.RowHighlighted)
    def row_highlighted(self) -> None:
        self.describe_highlighted()

    @on(Input.Submitted, "#models-filter")
    @on(DataTable.RowSelected)
    def action_pick(self) -> None:
        entry, download = self.highlighted()
        if download:
            self.dismiss(PickerChoice(None, download))
        elif entry is not None and entry.kind == "hub" and not entry.in_hub_cache:
            self.dismiss(PickerChoice(None, entry.model))
        elif entry is not None:
            self.dismiss(PickerChoice(entry))

    def action_focus_list(self) -> None:
        self.query_one(DataTable).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    @work
    async def action_delete(self) -> None:
        from tui.ui.screens.dialogs import ConfirmScreen

        entry, _ = self.highlighted()
        if entry is None or not entry.in_hub_cache:
            self.notify("Only models in the Hugging Face cache can be deleted here.", severity="warning")
            return
        question = f"Delete {entry.name} ({size_text(entry.facts.size_bytes)}) from the Hugging Face cache?"
        if self.in_use and self.in_use in (entry.name, entry.model):
            question += " It is the model in use: the chat goes on with it until you switch, but it is gone on disk."
        if await self.app.push_screen_wait(ConfirmScreen(question)):
            self.delete_from_cache(entry)

    @work(thread=True, exclusive=True, group="delete")
    def delete_from_cache(self, entry: CatalogueEntry) -> None:
        from tui.engine.hub_cache import HubCacheError, delete_model

        try:
            freed = delete_model(entry.name)  # a cached model is named by its Hub id
        except HubCacheError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.notify, f"Deleted {entry.name} from the cache ({size_text(freed)} freed).")
        self.read_catalogue()
