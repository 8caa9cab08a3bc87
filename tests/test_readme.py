"""The README's keys table is the app's bindings, key for key."""

import re
from pathlib import Path

from tui.app import ChatApp

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_keys() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- keys:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `([^`]+)` \| ([^|]+)\|$", table, re.M)}


def test_readme_keys_table_matches_the_bindings():
    expected = {binding.key: binding.description for binding in ChatApp.BINDINGS}
    expected["ctrl+p"] = "Command palette"
    assert readme_keys() == expected
