"""The conversations browser: newest first, type to search, open, rename, delete. It works on
the library directly and returns what happened (what to open, what was renamed or deleted)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from tui.store import ConversationSummary, Library, StoreError
from tui.text import inert
from tui.ui.actions import BY_ID, Keymap, bindings
from tui.ui.screens.dialogs import ConfirmScreen, TextPromptScreen
from tui.ui.screens.modal import Modal


@dataclass
class BrowserResult:
    action: str  # "open", "new" or "close"
    conv_id: str | None = None  # the conversation to open
    renamed: dict[str, str] = field(default_factory=dict)  # id → new title
    deleted: set[str] = field(default_factory=set)


def _highlighted(snippet: str) -> Text:
    """FTS5 snippets mark matches with [ and ]: show them highlighted."""
    text = Text()
    rest = snippet
    while "[" in rest and "]" in rest.split("[", 1)[1]:
        before, rest = rest.split("[", 1)
        match, rest = rest.split("]", 1)
        text.append(inert(before))
        text.append(inert(match), style="bold reverse")
    text.append(inert(rest))
    return text


def _row(summary: ConversationSummary, titles: dict[str, str]) -> Text:
    """A chat in the list: its title, then when, its model and length, and for a branch where it
    came from (`titles`: the listed chats' titles by id; an origin not listed is named as gone)."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(summary.updated))
    row = Text()
    row.append(inert(summary.title) or "(untitled)", style="bold")
    row.append(
        f"\n{when} · {inert(summary.model or '?')} · {summary.message_count} "
        f"message{'' if summary.message_count == 1 else 's'}",
        style="dim",
    )
    if summary.origin_id:
        origin = titles.get(summary.origin_id)
        link = f" · ⑂ from “{inert(origin)}”" if origin else " · ⑂ a branch (its origin is not listed)"
        row.append(link, style="dim")
    if summary.snippet:
        row.append("\n")
        row.append_text(_highlighted(summary.snippet.replace("\n", " ")))
    return row


class ConversationBrowser(Modal[BrowserResult]):
    BINDINGS = bindings("browser")
    HINTED = ("browser.open", "browser.rename", "browser.delete", "browser.new", "browser.close")  # under the list

    def __init__(self, library: Library, keymap: Keymap) -> None:
        super().__init__()
        self.library = library
        self.keymap = keymap
        self.summaries: list[ConversationSummary] = []
        self.renamed: dict[str, str] = {}
        self.deleted: set[str] = set()

    def compose_dialog(self) -> ComposeResult:
        with Vertical(id="browser", classes="dialog"):
            yield Static("Conversations", classes="section-title")
            yield Input(placeholder="type to search titles and messages", id="browser-search")
            yield OptionList(id="browser-list")
            yield Static(
                " · ".join(f"{self.keymap.key(i)}: {BY_ID[i].title.lower()}" for i in self.HINTED),
                classes="muted dialog-keys",
                markup=False,
            )

    def on_mount(self) -> None:
        self.refresh_list("")

    def refresh_list(self, query: str) -> None:
        try:
            self.summaries = self.library.search(query) if query.strip() else self.library.list()
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            self.summaries = []
        options = self.query_one(OptionList)
        options.clear_options()
        titles = {summary.id: summary.title for summary in self.summaries}
        options.add_options([Option(_row(s, titles), id=s.id) for s in self.summaries])
        if not self.summaries:
            options.add_option(
                Option("no conversations match" if query.strip() else "no conversations yet", disabled=True)
            )
        elif options.highlighted is None:
            options.highlighted = 0

    @on(Input.Changed, "#browser-search")
    def search_changed(self, event: Input.Changed) -> None:
        self.refresh_list(event.value)

    @on(Input.Submitted, "#browser-search")
    def search_submitted(self) -> None:
        self.action_open()

    @on(OptionList.OptionSelected)
    def selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self._finish("open", event.option.id)

    def _finish(self, action: str, conv_id: str | None = None) -> None:
        self.dismiss(BrowserResult(action, conv_id, self.renamed, self.deleted))

    def _highlighted_id(self) -> str | None:
        options = self.query_one(OptionList)
        if options.highlighted is None or not self.summaries:
            return None
        return options.get_option_at_index(options.highlighted).id

    def action_open(self) -> None:
        conv_id = self._highlighted_id()
        if conv_id:
            self._finish("open", conv_id)

    def action_focus_list(self) -> None:
        self.query_one(OptionList).focus()

    def action_new(self) -> None:
        self._finish("new")

    def action_close(self) -> None:
        self._finish("close")

    @work
    async def action_rename(self) -> None:
        conv_id = self._highlighted_id()
        if not conv_id:
            return
        current = next(s.title for s in self.summaries if s.id == conv_id)
        title = await self.app.push_screen_wait(TextPromptScreen("Rename conversation", current))
        if title:
            try:
                self.library.rename(conv_id, title)
                self.renamed[conv_id] = title
            except StoreError as exc:
                self.notify(str(exc), severity="error")
            self.refresh_list(self.query_one("#browser-search", Input).value)

    @work
    async def action_delete(self) -> None:
        conv_id = self._highlighted_id()
        if not conv_id:
            return
        title = next(s.title for s in self.summaries if s.id == conv_id)
        if await self.app.push_screen_wait(ConfirmScreen(f"Delete “{title}” and all its messages?")):
            try:
                self.library.delete(conv_id)
                self.deleted.add(conv_id)
            except StoreError as exc:
                self.notify(str(exc), severity="error")
            self.refresh_list(self.query_one("#browser-search", Input).value)
