"""How the chat screen hands its work to its parts (screens/chat.py): each chat action of the
table runs on the part that defines it, and each routed message goes to the part that handles it.
Both are installed on the screen class at import, so a missing part fails there, not at a key."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.message import Message

from tui.ui.actions import ACTIONS

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen

Route = Callable[["ChatScreen", Any], Any]


def route_actions(screen_class: type[ChatScreen], part_classes: tuple[type, ...]) -> None:
    """Give the screen an `action_<name>` for each of the table's chat actions that it does not
    run itself, which runs the part's (Textual finds actions by name on the screen). An action
    that no part runs is an error here, at import, not when its key is pressed."""

    def routed(name: str) -> Callable[..., Any]:
        def run(self: ChatScreen, *args: Any) -> Any:
            method = self.part_action(name)
            return method(*args[: len(inspect.signature(method).parameters)])

        run.__name__ = run.__qualname__ = f"action_{name}"
        run.__doc__ = f"Runs `action_{name}` of the part that has it."
        return run

    for action in ACTIONS:
        name = f"action_{action.action}"
        if action.scope != "chat" or name in vars(screen_class):
            continue
        if not any(hasattr(part, name) for part in part_classes):
            raise LookupError(f"no part of the chat screen runs the action {action.action!r}")
        setattr(screen_class, name, routed(action.action))


def route_messages(screen_class: type[ChatScreen], routes: dict[type[Message], Route]) -> None:
    """An `on_<message>` handler on the screen for each route (Textual finds a handler by its
    message's `handler_name`); what a route returns (an async part's coroutine) Textual awaits."""

    def handler(route: Route, name: str) -> Callable[..., Any]:
        def handle(self: ChatScreen, message: Message) -> Any:
            return route(self, message)

        handle.__name__ = handle.__qualname__ = name
        return handle

    for message_class, route in routes.items():
        name = message_class.handler_name
        if name in vars(screen_class):
            raise LookupError(f"the chat screen has {name} and routes it too")
        setattr(screen_class, name, handler(route, name))
