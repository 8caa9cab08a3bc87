"""The table of actions and the keymap: ids are unique, no two actions of a scope share a key,
and keys named in text follow the user's [keys]."""

from __future__ import annotations

from collections import Counter

from tui.ui.actions import ACTIONS, Keymap, bindings


def test_binding_ids_are_unique_and_keys_do_not_clash_within_a_scope():
    assert len({a.id for a in ACTIONS}) == len(ACTIONS)
    for scope in {a.scope for a in ACTIONS}:
        keys = Counter(b.key for b in bindings(scope))
        assert [key for key, n in keys.items() if n > 1] == [], scope


def test_keys_in_text_follow_the_users_keys():
    keymap = Keymap({"compare.keep_2": "x", "token_view.previous_token": "h"})
    assert Keymap().span(f"compare.keep_{n}" for n in range(1, 5)) == "1-4"
    assert keymap.span(f"compare.keep_{n}" for n in range(1, 5)) == "1/x/3/4"
    assert keymap.key("token_view.previous_token") == "h" and keymap.key("token_view.next_token") == "→"
    assert Keymap().shown("tool_approval.deny") == "d / escape"


def test_config_can_rebind_a_modal_key_by_its_id():
    keymap = Keymap({"tool_approval.run_once": "r"})
    assert keymap.errors == [] and keymap.keys("tool_approval.run_once") == "r"


def test_compare_has_a_keep_key_for_each_column():
    from tui.ui.screens.compare import MAX_COLUMNS

    assert [b.id for b in bindings("compare") if b.id.startswith("compare.keep_")] == [
        f"compare.keep_{n}" for n in range(1, MAX_COLUMNS + 1)
    ]
