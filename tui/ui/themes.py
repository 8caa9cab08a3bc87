"""Colour themes as TOML files: the bundled ones (themes/ in the repo, tui/_themes in the wheel)
and the user's in <config dir>/themes, where a theme replaces a bundled one of the same name.

    name = "my-theme"
    dark = true
    primary = "#7aa2f7"  # and secondary, accent, foreground, background, surface, panel,
                         # success, warning, error: any colour Textual understands
    [variables]          # optional Textual theme variables
    "footer-key-foreground" = "#ff9e64"
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from textual.app import App
from textual.color import Color, ColorParseError
from textual.css.errors import DeclarationError
from textual.css.styles import Styles
from textual.css.tokenizer import TokenError
from textual.theme import Theme

from tui.paths import config_dir

DEFAULT_THEME = "chatui-dusk"
COLOUR_FIELDS = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "success",
    "warning",
    "error",
)
FIELDS = ("name", "dark", *COLOUR_FIELDS)


class ThemeError(ValueError):
    """A theme file that cannot be used: "<file name>: <problem>"."""


def bundled_themes_dir() -> Path:
    """The themes shipped with chatui: tui/_themes in the wheel, else <repo>/themes."""
    package = Path(__file__).resolve().parents[1]  # tui/
    packaged = package / "_themes"
    return packaged if packaged.is_dir() else package.parent / "themes"


def user_themes_dir() -> Path:
    return config_dir() / "themes"


@cache
def _default_variables() -> dict[str, str]:
    """Every variable a Textual theme can set, with its value in a plain theme."""
    return Theme(name="-", primary="#000000").to_color_system().generate()


def _is_colour(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        Color.parse(value)
    except ColorParseError:
        return False
    return True


def _variable_problem(name: str, value: object) -> str | None:
    """What is wrong with setting Textual variable `name` to `value`, or None.

    The value is checked as the CSS it ends up in, so a bad one cannot break the stylesheet."""
    default = _default_variables().get(name)
    if default is None:
        return f"unknown variable {name!r}"
    if not isinstance(value, str):
        return f"variable {name!r} must be a string"
    if "style" in name.split("-"):
        rule = "text-style"
    elif default.startswith("auto"):
        rule = "color"
    else:
        rule = "background"
    kind = "text style" if rule == "text-style" else "colour"
    invalid = f"variable {name!r} = {value!r} is not a {kind}"
    if ";" in value:
        return invalid
    try:
        Styles.parse(f"{rule}: {value};", ("theme", name))
    except (DeclarationError, TokenError):
        return invalid
    return None


def _theme_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a theme file's table, or None."""
    missing = [key for key in FIELDS if key not in data]
    if missing:
        return "missing " + ", ".join(missing)
    extra = sorted(set(data) - {*FIELDS, "variables"})
    if extra:
        return "unknown field(s) " + ", ".join(extra)
    if not isinstance(data["name"], str) or not data["name"].strip():
        return "name must be a non-empty string"
    if not isinstance(data["dark"], bool):
        return "dark must be true or false"
    for key in COLOUR_FIELDS:
        if not _is_colour(data[key]):
            return f"{key} = {data[key]!r} is not a colour"
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        return "variables must be a table"
    for name, value in variables.items():
        problem = _variable_problem(name, value)
        if problem:
            return problem
    return None


def load_theme_file(path: Path) -> Theme:
    """Read and check one theme file; raises ThemeError naming the file and the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ThemeError(f"{path.name}: invalid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ThemeError(f"{path.name}: cannot read it: {exc}") from exc
    problem = _theme_problem(data)
    if problem:
        raise ThemeError(f"{path.name}: {problem}")
    return Theme(**data)


def load_themes() -> tuple[list[Theme], list[str]]:
    """The bundled themes then the user's, and a warning for each file that was skipped."""
    themes: dict[str, Theme] = {}
    warnings: list[str] = []
    for folder in (bundled_themes_dir(), user_themes_dir()):
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = load_theme_file(path)
            except ThemeError as exc:
                warnings.append(f"Skipped a theme in {folder}: {exc}")
                continue
            themes[theme.name] = theme
    return list(themes.values()), warnings


def register_themes(app: App[Any]) -> list[str]:
    """Make every loaded theme available to `app`; returns the warnings to show."""
    themes, warnings = load_themes()
    for theme in themes:
        app.register_theme(theme)
    return warnings
