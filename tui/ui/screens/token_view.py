"""The token view: a reply as the tokens the model wrote, each coloured by its probability, and
for the token under the cursor the 10 most likely tokens before and after the sampling filters
(temperature, top_k, top_p, min_p, repetition penalty): what each setting removed shows.

←/→ (and Home/End, PageUp/PageDown by 10) move between tokens; `c` turns the colours off and on;
a digit picks an alternative of the token under the cursor (1-9, 0 for the 10th) and dismisses
with (index, alternative): the chat screen then writes a new version of the reply from there.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from tui.engine.events import Alternative, TokenChoice
from tui.text import inert
from tui.ui.actions import Keymap, bindings
from tui.ui.screens.modal import Modal

# Probability bands and the theme colour each is drawn in (likely to unlikely).
BANDS = ((0.9, None), (0.5, "success"), (0.2, "warning"), (0.0, "error"))
BAR_WIDTH = 12


def band_colour(probability: float) -> str | None:
    """The theme variable a token of this probability is drawn in (None: plain text)."""
    for floor, colour in BANDS:
        if probability >= floor:
            return colour
    return BANDS[-1][1]


def shown_piece(token: str) -> str:
    """A token as it can be seen: control characters made visible, a newline as ⏎ (then a break)."""
    return inert(token).replace("\n", "⏎\n").replace("\t", "⇥")


def alternative_rows(choice: TokenChoice, before: bool, width: int = 50) -> Text:
    """The alternatives of one side as lines of at most `width` cells: key, token, probability
    bar (when there is room), probability, and "removed" for those the filters took away."""
    alternatives: tuple[Alternative, ...] = choice.top_raw if before else choice.top
    bar = BAR_WIDTH if width >= 44 else 0
    token_width = max(4, min(14, width - 2 - 8 - (bar + 2 if bar else 0) - (9 if width >= 44 else 2)))
    text = Text()
    for number, alt in enumerate(alternatives, start=1):
        probability = math.exp(alt.logprob)
        key = str(number % 10) if before and number <= 10 else " "  # the digit that branches from it
        style = "bold" if alt.id == choice.id else ""
        if not alt.kept:
            style = "dim strike"
        text.append(f"{key} ")  # a key to press: as readable as the rest
        text.append(f"{shown_piece(alt.token).replace(chr(10), ''):<{token_width}.{token_width}}", style=style)
        if bar:
            filled = round(probability * bar)
            text.append(" " + "█" * filled + "·" * (bar - filled), style="dim" if not alt.kept else "")
        text.append(f" {probability:7.2%}", style=style)
        if not alt.kept:
            text.append("  removed" if width >= 44 else " ✗", style="italic")
        text.append("\n")
    return text


class TokenViewScreen(Modal[tuple[int, Alternative] | None]):
    """Needs an app with `keymap` (tui.ui.actions.Keymap): it names the user's keys."""

    BINDINGS = bindings("token_view")
    AUTO_FOCUS = "#token-text"

    def __init__(self, choices: list[TokenChoice], branch_possible: bool = True) -> None:
        super().__init__()
        self.choices = choices
        self.cursor = 0
        self.colours = True
        self.branch_possible = branch_possible

    def compose_dialog(self) -> ComposeResult:
        with Vertical(id="token-dialog"):
            yield Static("Token view", classes="section-title")
            with VerticalScroll(id="token-scroll"):
                yield Static(id="token-text")
            yield Static(id="token-detail", classes="muted")
            with VerticalScroll(id="token-alternatives-scroll"), Horizontal(id="token-alternatives"):
                with Vertical():
                    yield Static("Before the filters", classes="section-title")
                    yield Static(id="token-before")
                with Vertical():
                    yield Static("After (sampled from)", classes="section-title")
                    yield Static(id="token-after")
            yield Static(self.keys_text(), classes="muted", markup=False, id="token-keys")

    def keys_text(self) -> str:
        """The keys the footer does not show (colours and close are there)."""
        keymap = Keymap.of(self.app)
        keys = [f"{keymap.key('token_view.previous_token')}/{keymap.key('token_view.next_token')} token"]
        if self.branch_possible:
            digits = keymap.span(f"token_view.alternative_{n}" for n in range(1, 10))
            keys.append(f"{digits}, {keymap.key('token_view.alternative_10')}: the reply again from there")
        return " · ".join(keys)

    def on_mount(self) -> None:
        self.query_one("#token-text").can_focus = True
        self.refresh_view()

    def tokens_text(self) -> Text:
        text = Text()
        variables = self.app.theme_variables
        for index, choice in enumerate(self.choices):
            style = ""
            colour = band_colour(math.exp(choice.logprob)) if self.colours else None
            if colour:
                style = variables.get(colour, "")
            if index == self.cursor:
                style = f"{style} reverse".strip()
            text.append(shown_piece(choice.token) or "∅", style=style)
        return text

    def refresh_view(self) -> None:
        if not self.choices:
            self.query_one("#token-text", Static).update("This reply has no recorded token probabilities.")
            return
        choice = self.choices[self.cursor]
        self.query_one("#token-text", Static).update(self.tokens_text())
        after, before = math.exp(choice.logprob), math.exp(choice.raw_logprob)
        rank = next((n for n, alt in enumerate(choice.top_raw, start=1) if alt.id == choice.id), None)
        self.query_one("#token-detail", Static).update(
            Text(
                f"token {self.cursor + 1} of {len(self.choices)}: "
                f"{shown_piece(choice.token).strip() or repr(choice.token)}"
                f" · p = {after:.2%} after the filters, {before:.2%} before"
                + (f" · rank {rank} of the model's top 10" if rank else " · outside the model's top 10")
            )
        )
        width = max(20, (self.query_one("#token-alternatives").size.width or 100) // 2 - 1)
        self.query_one("#token-before", Static).update(alternative_rows(choice, before=True, width=width))
        self.query_one("#token-after", Static).update(alternative_rows(choice, before=False, width=width))

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_view)

    def action_move(self, step: int) -> None:
        if self.choices:
            self.cursor = max(0, min(len(self.choices) - 1, self.cursor + step))
            self.refresh_view()

    def action_toggle_colours(self) -> None:
        self.colours = not self.colours
        self.refresh_view()

    def action_branch(self, number: int) -> None:
        if not self.choices:
            return
        if not self.branch_possible:
            self.notify(
                "A remote server's tokens come without ids: branching needs the in-process model.", severity="warning"
            )
            return
        alternatives = self.choices[self.cursor].top_raw
        if number < len(alternatives):
            self.dismiss((self.cursor, alternatives[number]))
