"""The tuning lab: recording token probabilities for the next replies, the token view of a reply,
a new version of the last reply from an alternative token, and settings compared side by side.
A part of the chat screen (screens/chat.py)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import TYPE_CHECKING

from tui import token_probs
from tui.core.chat_session import SessionError
from tui.engine import Finished, GenerationSettings, SettingsError, parse_key_values
from tui.engine.adapter_control import parse_mix
from tui.engine.errors import AdapterError
from tui.engine.events import Alternative
from tui.engine.settings import BUILTIN_PRESETS
from tui.store import Message as StoredMessage
from tui.ui.bridge import answer
from tui.ui.screens.compare import MAX_COLUMNS, Column, CompareScreen
from tui.ui.screens.token_view import TokenViewScreen
from tui.ui.widgets.message import MessageView

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen


class TuningLab:
    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen

    def action_toggle_token_probs(self) -> None:
        replies = self.screen.replies
        replies.record_token_probs = not replies.record_token_probs
        key = self.screen.keymap.key("chat.token_view")
        if replies.record_token_probs:
            self.screen.notify(
                f"The next replies record each token's probability: {key} shows them.", title="Token probabilities on"
            )
        else:
            self.screen.notify("Token probabilities off: replies are no longer recorded.")
        self.screen.status.update_info(probs=replies.record_token_probs)

    def action_token_view(self, message: StoredMessage | None = None) -> None:
        self.screen.run_worker(self.token_view(message))

    async def token_view(self, message: StoredMessage | None = None) -> None:
        """The token view of `message` (the focused reply, or the last one)."""
        if message is None:
            focused = self.screen.app.focused
            focused_id = (
                focused.message_id if isinstance(focused, MessageView) and focused.role == "assistant" else None
            )
            message = next(
                (
                    m
                    for m in reversed(self.screen.messages)
                    if m.role == "assistant" and (focused_id is None or m.id == focused_id)
                ),
                None,
            )
        if message is None:
            self.screen.notify("There is no reply to look at yet.", severity="warning")
            return
        choices = token_probs.of_message(message.meta)
        if not choices:
            key = self.screen.keymap.key("chat.token_probs")
            self.screen.notify(
                f"This reply was written without token probabilities: press {key} to record them, then regenerate it.",
                severity="warning",
                timeout=10,
            )
            return
        with_ids = self.screen.engine.capabilities.token_ids and all(choice.id >= 0 for choice in choices)
        picked = await self.screen.app.push_screen_wait(TokenViewScreen(choices, branch_possible=with_ids))
        if picked is not None:
            index, alternative = picked
            await self.branch_from_token(message, index, alternative)

    async def branch_from_token(self, message: StoredMessage, index: int, alternative: Alternative) -> None:
        """A new version of the reply: its tokens before `index`, then `alternative`, then the
        model goes on (recording token probabilities, so the new version can be looked at too)."""
        if self.screen.replies.busy():
            return
        choices = token_probs.of_message(message.meta)
        try:
            prefix = await answer(self.screen.engine.decode([c.id for c in choices[:index]] + [alternative.id]))
            plan = self.screen.session.plan_branch(message, index, alternative, prefix)
        except (SessionError, NotImplementedError) as exc:
            self.screen.notify(str(exc), severity="warning")
            return
        except Exception as exc:  # the model went away meanwhile: a message, not a traceback
            self.screen.notify(f"Cannot branch here: {exc}", severity="error")
            return
        self.screen.replies.record_token_probs = True
        self.screen.status.update_info(probs=True)
        await self.screen.replies.start("branch", plan)

    # -- compare settings -----------------------------------------------------------------------

    def compare_columns(self, argument: str) -> list[Column]:
        """The settings named in `/compare` words: `current`, a preset, or ad-hoc `key=value,...`
        (on top of the current settings); by default the current ones and the three built-ins.
        Raises SettingsError naming a bad word."""
        words = argument.split() or ["current", *BUILTIN_PRESETS]
        if not 2 <= len(words) <= MAX_COLUMNS:
            raise SettingsError(f"compare 2 to {MAX_COLUMNS} settings, got {len(words)}")
        presets = self.screen.settings_editor.presets()
        base: GenerationSettings = self.screen.session.generation
        columns = []
        for word in words:
            if word == "current":
                settings = base
            elif word in presets:
                settings = base.with_updates(presets[word])
            elif word.startswith("adapter:"):
                columns.append(Column(word, base, adapters=self._adapter_column(word)))
                continue
            elif "=" in word:
                settings = base.with_updates(parse_key_values(word.split(",")))
            else:
                raise SettingsError(
                    f"{word!r} is not current, a preset ({', '.join(presets)}), key=value,... or adapter:NAME"
                )
            columns.append(Column(word, settings))
        if any(c.settings.do_sample for c in columns) and base.seed is None:
            seed = random.randrange(2**32)  # one seed for all: the settings make the difference
            columns = [replace(c, settings=c.settings.with_updates({"seed": seed})) for c in columns]
        return columns

    def _adapter_column(self, word: str) -> dict[str, float]:
        """`adapter:none`, `adapter:NAME` or `adapter:a=0.5+b=0.5` → the mix; SettingsError says why not."""
        control = self.screen.adapters.control
        if control is None:
            raise SettingsError(f"{word}: the model in use takes no adapters")
        state = control.state
        if state.merged:
            raise SettingsError(f"{word}: {state.label()} is merged into the weights; reload the model to compare")
        try:
            mix = parse_mix(word.removeprefix("adapter:").replace("+", ","))
        except AdapterError as exc:
            raise SettingsError(str(exc)) from None
        unknown = [name for name in mix if name not in state.names]
        if unknown:
            raise SettingsError(
                f"{word}: no adapter named {unknown[0]} is loaded (loaded: {', '.join(state.names) or 'none'})"
            )
        return mix

    def action_compare(self, argument: str = "") -> None:
        self.screen.run_worker(self._compare(argument))

    async def _compare(self, argument: str) -> None:
        if self.screen.replies.busy():
            return
        try:
            columns = self.compare_columns(argument)
            plan = self.screen.session.plan_reply("regenerate")
        except (SettingsError, SessionError) as exc:
            self.screen.notify(f"Compare: {exc}", severity="warning")
            return
        kept = await self.screen.app.push_screen_wait(CompareScreen(self.screen.engine, plan.messages, columns))
        if kept is None or not isinstance(kept.final, Finished):
            return
        self.screen.session.start_reply(plan)
        self.screen.session.reply_progress(kept.final.text)
        self.screen.session.end_reply(kept.final)
        self.screen.files.report_saves()
        await self.screen.transcript.render()
        self.screen.notify(f"Kept the reply written with {kept.name} as a new version.")
