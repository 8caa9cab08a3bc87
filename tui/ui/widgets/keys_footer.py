"""The footer: the keys of the focused widget and its screen that fit the terminal's width, each
whole. Help comes first (it lists every key), quit is always there, and so is a key the screen
says does something else just now (`key_description`: Esc closing the sidebar); the others follow
in the table's order while there is room, and those that do not fit are left out, never cut
mid-word."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

FIRST = "app.help"  # the binding ids kept ahead of the others, in this order
LAST = "app.quit"


def key_width(key_display: str, description: str) -> int:
    """Cells a FooterKey takes (not compact): " key " then "description "."""
    return cell_len(key_display) + 2 + cell_len(description) + 1


def fitting(widths: list[int], room: int, kept: tuple[int, ...] = ()) -> list[int]:
    """The indexes of the items that fit in `room` cells: those in `kept` first, then the others
    in order while each still fits (a later short one may fill a gap left by a long one)."""
    chosen = []
    used = 0
    for index in (*kept, *(i for i in range(len(widths)) if i not in kept)):
        if used + widths[index] <= room:
            chosen.append(index)
            used += widths[index]
    return chosen


class KeysFooter(Footer):
    _composed_width = 0  # the width the keys were chosen for

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.screen.active_bindings
        by_action: dict[str, tuple[Any, bool, str]] = {}  # one key per action, the first
        for _, binding, enabled, tooltip in active.values():
            if binding.show:
                by_action.setdefault(binding.action, (binding, enabled, tooltip))
        keys = list(by_action.values())
        keys.sort(key=lambda key: (key[0].id != FIRST, key[0].id == LAST))
        displays = [self.app.get_key_display(binding) for binding, _, _ in keys]
        describe = getattr(self.screen, "key_description", None)  # a screen may say what a key does now
        descriptions = [describe(binding) if describe else binding.description for binding, _, _ in keys]
        widths = [key_width(display, text) for display, text in zip(displays, descriptions, strict=True)]
        palette = active.get(self.app.COMMAND_PALETTE_BINDING) if self.show_command_palette else None
        self._composed_width = self.size.width
        room = self.size.width or sum(widths)  # before the first layout: all, until on_resize
        if palette is not None and self.app.ENABLE_COMMAND_PALETTE:
            binding = palette[1]
            room -= key_width(self.app.get_key_display(binding), binding.description) + 2  # its border and padding
        # kept: help, quit, and a key whose meaning the moment changed (Esc closing an overlay)
        kept = tuple(
            i
            for i, (binding, _, _) in enumerate(keys)
            if binding.id in (FIRST, LAST) or descriptions[i] != binding.description
        )
        for index in sorted(fitting(widths, room, kept)):
            binding, enabled, tooltip = keys[index]
            yield FooterKey(
                binding.key, displays[index], descriptions[index], binding.action, disabled=not enabled, tooltip=tooltip
            ).data_bind(compact=Footer.compact)
        if palette is not None and self.app.ENABLE_COMMAND_PALETTE:
            _, binding, enabled, tooltip = palette
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and event.size.width != self._composed_width:
            self.call_after_refresh(self.recompose)
