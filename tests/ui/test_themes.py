"""Bundled and user colour themes: every bundled file is complete and readable (WCAG contrast),
user themes are picked up or replace bundled ones, broken files are skipped with a warning, and
the themes work in a running app."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

import pytest
from textual.app import App, ComposeResult
from textual.color import Color
from textual.widgets import Footer, Input, Markdown, OptionList

from tui.paths import config_dir
from tui.ui import themes
from tui.ui.themes import (
    DEFAULT_THEME,
    FIELDS,
    ThemeError,
    bundled_themes_dir,
    load_theme_file,
    load_themes,
    register_themes,
    user_themes_dir,
)

BUNDLED = sorted(bundled_themes_dir().glob("*.toml"))
CONTRAST_THEME = "chatui-contrast"
ACCENTS = ("primary", "secondary", "accent", "success", "warning", "error")

GOOD = """\
name = "{name}"
dark = true
primary = "#7aa2f7"
secondary = "#9d7cd8"
accent = "#ff9e64"
foreground = "#d8dbe9"
background = "#16161e"
surface = "#1e1f2b"
panel = "#292c3d"
success = "#9ece6a"
warning = "#e0af68"
error = "#f7768e"
"""


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    rgb = Color.parse(colour)
    return 0.2126 * channel(rgb.r) + 0.7152 * channel(rgb.g) + 0.0722 * channel(rgb.b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(themes, "user_themes_dir", lambda: tmp_path)
    return tmp_path


def test_dirs() -> None:
    assert bundled_themes_dir() == Path(themes.__file__).resolve().parents[2] / "themes"  # <repo>/themes
    assert user_themes_dir() == config_dir() / "themes"


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_file_is_complete(path: Path) -> None:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    assert set(FIELDS) <= set(data)
    theme = load_theme_file(path)
    assert theme.name == path.stem and theme.name.startswith("chatui-")


def test_bundled_set() -> None:
    loaded, warnings = load_themes()
    assert warnings == []
    by_name = {theme.name: theme for theme in loaded}
    assert len(by_name) == len(BUNDLED) >= 5
    assert by_name[DEFAULT_THEME].dark
    assert any(not theme.dark for theme in loaded)
    assert by_name[CONTRAST_THEME].background == "#000000"
    assert by_name[CONTRAST_THEME].foreground == "#ffffff"


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_contrast(path: Path) -> None:
    """Text: 4.5:1 (AA), 7:1 (AAA) for the high-contrast theme; accents: 3:1, or 7:1 there."""
    theme = load_theme_file(path)
    high = theme.name == CONTRAST_THEME
    for ground in ("background", "surface", "panel"):
        ratio = contrast(theme.foreground, getattr(theme, ground))
        assert ratio >= (7 if high else 4.5), f"foreground on {ground}: {ratio:.2f}"
    for key in ACCENTS:
        ratio = contrast(getattr(theme, key), theme.background)
        assert ratio >= (7 if high else 3), f"{key} on background: {ratio:.2f}"


def test_user_theme_added_and_replaces_bundled(user_dir: Path) -> None:
    (user_dir / "mine.toml").write_text(GOOD.format(name="mine"), encoding="utf-8")
    (user_dir / "dusk.toml").write_text(GOOD.format(name=DEFAULT_THEME).replace("#7aa2f7", "#123456"), encoding="utf-8")
    loaded, warnings = load_themes()
    assert warnings == []
    by_name = {theme.name: theme for theme in loaded}
    assert len(by_name) == len(loaded) == len(BUNDLED) + 1
    assert by_name["mine"].primary == "#7aa2f7"
    assert by_name[DEFAULT_THEME].primary == "#123456"


BROKEN = {
    "bad-toml": 'name = "x\n',
    "bad-colour": GOOD.format(name="x").replace("#f7768e", "not-a-colour"),
    "missing-field": GOOD.format(name="x").replace('panel = "#292c3d"\n', ""),
    "extra-field": GOOD.format(name="x") + 'shadow = "#000000"\n',
    "dark-not-bool": GOOD.format(name="x").replace("dark = true", 'dark = "yes"'),
    "colour-not-string": GOOD.format(name="x").replace('"#16161e"', "22"),
    "empty-name": GOOD.format(name=" "),
    "bad-variable": GOOD.format(name="x") + '[variables]\n"footer-key-foreground" = "nope"\n',
    "bad-style": GOOD.format(name="x") + '[variables]\n"block-cursor-text-style" = "loud"\n',
    "unknown-variable": GOOD.format(name="x") + '[variables]\n"footer-kye-foreground" = "red"\n',
    "variables-not-table": GOOD.format(name="x").replace("dark", 'variables = "red"\ndark'),
}


@pytest.mark.parametrize("content", BROKEN.values(), ids=BROKEN.keys())
def test_broken_user_theme_skipped(user_dir: Path, content: str) -> None:
    path = user_dir / "broken.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ThemeError, match=r"^broken\.toml: "):
        load_theme_file(path)
    loaded, warnings = load_themes()
    assert len(loaded) == len(BUNDLED)
    assert len(warnings) == 1 and "broken.toml" in warnings[0]


class ThemedApp(App[None]):
    """Widgets that use the theme variables, so a bad value would break the stylesheet."""

    def compose(self) -> ComposeResult:
        yield Markdown("# Title\n\nSome *text*.")
        yield Input("selected")
        yield OptionList("one", "two")
        yield Footer()


def test_register_themes(user_dir: Path) -> None:
    (user_dir / "mine.toml").write_text(GOOD.format(name="mine"), encoding="utf-8")
    (user_dir / "broken.toml").write_text(BROKEN["bad-colour"], encoding="utf-8")
    names = [path.stem for path in BUNDLED] + ["mine"]

    async def run() -> list[str]:
        app = ThemedApp()
        async with app.run_test() as pilot:
            warnings = register_themes(app)
            assert set(names) <= set(app.available_themes)
            for name in names:
                app.theme = name
                await pilot.pause()
                assert app.theme == name
                assert app.current_theme.name == name
        return warnings

    warnings = asyncio.run(run())
    assert len(warnings) == 1 and "broken.toml" in warnings[0]
