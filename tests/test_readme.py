"""The README's keys table is the table of actions, key for key."""

import re
from pathlib import Path

from tui.ui.actions import in_scope

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_keys() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    table = text.split("<!-- keys:", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `([^`]+)` \| ([^|]+)\|$", table, re.M)}


def test_readme_keys_table_matches_the_bindings():
    expected = {action.key: action.title for action in in_scope("chat", "app") if action.key}
    expected["ctrl+p"] = "Command palette"
    assert readme_keys() == expected
