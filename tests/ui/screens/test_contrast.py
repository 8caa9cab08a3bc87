"""Every bundled theme meets WCAG AA on screen, measured per character: each letter and digit the
app draws (the chat, the prompt's placeholder, the sidebar's labels, headings and placeholders,
the status bar, the footer, a focused message, the token view's probability colours) has 4.5:1
against the cell's background, in truecolour and as a 256-colour terminal shows it (each colour
as rich downgrades it for such a terminal); the do_sample switch's knob stands 3:1 from its track.

Colours come from the themes' own files (themes/, loaded by tui/ui/themes.py) as the app renders
them: what the compositor puts in each cell, transparency and tints resolved."""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Iterator

import pytest
from pilot import run, wait_for
from rich.color import Color, ColorSystem
from rich.console import Console
from rich.segment import ControlType, Segment
from test_snapshots import converse, snapshot_app
from textual.geometry import Offset, Region

from tui.engine.events import Alternative, TokenChoice
from tui.ui.screens.token_view import TokenViewScreen
from tui.ui.themes import load_themes

THEMES = sorted(theme.name for theme in load_themes()[0])
TEXT = 4.5  # WCAG AA, normal text (terminal cells are never "large text")
CONTROL = 3.0  # WCAG AA, the parts of a control that show its state
SYSTEMS = {"truecolour": ColorSystem.TRUECOLOR, "256 colours": ColorSystem.EIGHT_BIT}


def luminance(rgb: tuple[int, int, int]) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    red, green, blue = rgb
    return 0.2126 * channel(red) + 0.7152 * channel(green) + 0.0722 * channel(blue)


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def shown(colour: Color, system: ColorSystem) -> tuple[int, int, int]:
    """The colour a terminal with `system` shows for `colour`."""
    red, green, blue = colour.downgrade(system).get_truecolor()
    return red, green, blue


def cells(app) -> Iterator[tuple[Offset, Segment]]:
    """The screen as the compositor draws it, segments with solid colours, each where it starts."""
    console = Console(
        width=app.size.width,
        height=app.size.height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    x = y = 0
    for segment in console._record_buffer:
        for control in segment.control or ():
            if control[0] == ControlType.CURSOR_MOVE_TO:
                x, y = control[1], control[2]
        if not segment.control:
            yield Offset(x, y), segment
            x += segment.cell_length


def is_text(character: str) -> bool:
    return unicodedata.category(character)[0] in "LN"


def low_contrast(app, system: ColorSystem, within: Region) -> set[tuple[float, str]]:
    """(contrast, text) of every run of letters and digits drawn under TEXT:1 in `within` (a
    modal's dialog: what shows dimmed behind it is not meant to be read)."""
    found = set()
    for where, segment in cells(app):
        style = segment.style
        if style is None or not within.contains_point(where) or not any(is_text(c) for c in segment.text):
            continue
        assert style.color is not None and style.bgcolor is not None, segment.text  # the theme's colours, always
        foreground, background = shown(style.color, system), shown(style.bgcolor, system)
        if style.reverse:
            foreground, background = background, foreground
        if style.dim:  # terminals draw dim text halfway to the background
            foreground = tuple((f + b) // 2 for f, b in zip(foreground, background, strict=True))  # type: ignore[assignment]
        ratio = contrast(foreground, background)
        if ratio < TEXT:
            found.add((round(ratio, 2), segment.text.strip()))
    return found


def switch_contrast(app, system: ColorSystem) -> float:
    """The do_sample switch's knob against its track: the two colours of its inner row (the state
    it shows has no words, only where the knob is)."""
    inner = app.chat_screen.query_one("#param-do_sample").content_region
    colours = set()
    for where, segment in cells(app):
        if where.y == inner.y and inner.x <= where.x < inner.right and segment.style:
            style = segment.style
            foreground, background = style.color, style.bgcolor
            if style.reverse:
                foreground, background = background, foreground
            if background is not None:
                colours.add(shown(background, system))
            if foreground is not None and segment.text.strip():  # a half block: both colours show
                colours.add(shown(foreground, system))
    lightness = sorted(colours, key=luminance)
    return contrast(lightness[0], lightness[-1]) if len(lightness) > 1 else 1.0


def edge_colour(app, system: ColorSystem, widget):
    """The colour most of `widget`'s left edge cell shows (a message's bar) in its middle row: a
    block character's colour when it covers half the cell or more, else the background's."""
    where = Offset(widget.region.x, widget.region.y + widget.region.height // 2)
    for start, segment in cells(app):
        if start.y == where.y and start.x <= where.x < start.x + segment.cell_length and segment.style:
            style = segment.style
            foreground, background = (style.bgcolor, style.color) if style.reverse else (style.color, style.bgcolor)
            glyph = segment.text[where.x - start.x] if segment.text else " "
            return shown(foreground if glyph in "█▉▊▋▌" else background, system)
    raise AssertionError("no edge drawn")


def edge_contrast(app, system: ColorSystem, widget) -> float:
    """How the focused `widget` shows its focus: its left edge (a message's bar, a field's border)
    against what is around it, in its middle row."""
    where = Offset(widget.region.x, widget.region.y + widget.region.height // 2)
    for start, segment in cells(app):
        if start.y == where.y and start.x <= where.x < start.x + segment.cell_length and segment.style:
            style = segment.style
            assert style.color is not None and style.bgcolor is not None
            return contrast(shown(style.color, system), shown(style.bgcolor, system))
    return 1.0


def probable_choices() -> list[TokenChoice]:
    """Tokens in every probability band of the token view's colours."""
    choices = []
    for index, probability in enumerate((0.95, 0.7, 0.3, 0.05) * 3):
        top = tuple(Alternative(10 * index + n, f" tok{n}", math.log(probability / (n + 1))) for n in range(4))
        choices.append(TokenChoice(top[0].id, f" word{index}", math.log(probability), math.log(probability), top, top))
    return choices


@pytest.mark.parametrize("theme", THEMES)
def test_every_character_meets_wcag_aa_in_truecolour_and_256_colours(tmp_path, theme):
    async def scenario():
        app = snapshot_app(tmp_path, theme=theme)
        async with app.run_test(size=(120, 40)) as pilot:
            await converse(pilot)  # a conversation, the sidebar, the placeholder in the empty prompt
            chat = app.chat_screen
            problems: dict[str, set[tuple[float, str]]] = {name: set() for name in SYSTEMS}
            controls: dict[str, float] = {}

            def measure(within: Region = app.screen.region) -> None:
                for name, system in SYSTEMS.items():
                    problems[name] |= low_contrast(app, system, within)

            measure()
            switch = chat.query_one("#param-do_sample")
            for _ in range(2):  # on and off
                for name, system in SYSTEMS.items():
                    key = f"{name}: the switch's knob"
                    controls[key] = min(controls.get(key, 99.0), switch_contrast(app, system))
                switch.toggle()
                await pilot.pause(0.5)  # the knob slides
            message = chat.chat.query("MessageView").last()
            unfocused_bars = {name: edge_colour(app, system, message) for name, system in SYSTEMS.items()}
            for focused in (message, chat.query_one("#param-temperature")):
                focused.focus()  # a focused message, then a focused field: each shows it clearly
                await pilot.pause(0.1)
                for name, system in SYSTEMS.items():
                    controls[f"{name}: focused {type(focused).__name__}"] = edge_contrast(app, system, focused)
                    if focused is message:  # WCAG 2.2's focus appearance: the bar itself changes, 3:1
                        key = f"{name}: a message's bar focused against unfocused"
                        controls[key] = contrast(edge_colour(app, system, message), unfocused_bars[name])
            chat.settings_panel.scroll_to_widget(chat.query_one("#preset-name"), animate=False)
            await pilot.pause(0.1)
            measure()
            app.push_screen(TokenViewScreen(probable_choices()))
            await wait_for(pilot, lambda: isinstance(app.screen, TokenViewScreen))
            for _ in range(4):  # the cursor over each band
                await pilot.pause(0.05)
                measure(app.screen.query_one("#token-dialog").region)
                await pilot.press("right")
            failures = [f"{name}: under {TEXT}:1: {sorted(problems[name])[:12]}" for name in SYSTEMS if problems[name]]
            failures += [f"{name}: {controls[name]:.2f}:1" for name in controls if controls[name] < CONTROL]
            assert not failures, f"{theme}: " + "; ".join(failures)

    run(scenario())
