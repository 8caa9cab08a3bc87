"""The tuning lab: recording token probabilities for the next replies, the token view of a reply,
a new version of the last reply from an alternative token, and settings compared side by side.
A mixin of ChatScreen (screens/chat.py), which holds the state these work on."""

from __future__ import annotations

import random

from textual import work

from tui import token_probs
from tui.bridge import answer
from tui.chat_session import SessionError
from tui.engine import Finished, GenerationSettings, SettingsError, parse_key_values
from tui.engine.events import Alternative
from tui.engine.settings import BUILTIN_PRESETS
from tui.screens.compare import MAX_COLUMNS, Column, CompareScreen
from tui.screens.token_view import TokenViewScreen
from tui.store import Message as StoredMessage
from tui.widgets.message import MessageView

TOKEN_VIEW_TOP = 10  # alternatives recorded per token for the token view


class TokenActions:
    """Part of ChatScreen, which provides what these methods use (session, engine, state, views)."""

    record_token_probs: bool = False

    def action_toggle_token_probs(self) -> None:
        self.record_token_probs = not self.record_token_probs
        key = self.keymap.key("chat.token_view")
        if self.record_token_probs:
            self.notify(f"The next replies record each token's probability: {key} shows them.",
                        title="Token probabilities on")
        else:
            self.notify("Token probabilities off: replies are no longer recorded.")
        self.status.update_info(probs=self.record_token_probs)

    @work
    async def action_token_view(self, message: StoredMessage | None = None) -> None:
        """The token view of `message` (the focused reply, or the last one)."""
        if message is None:
            focused = self.app.focused
            focused_id = focused.message_id if isinstance(focused, MessageView) and focused.role == "assistant" else None
            message = next((m for m in reversed(self.messages)
                            if m.role == "assistant" and (focused_id is None or m.id == focused_id)), None)
        if message is None:
            self.notify("There is no reply to look at yet.", severity="warning")
            return
        choices = token_probs.of_message(message.meta)
        if not choices:
            key = self.keymap.key("chat.token_probs")
            self.notify(f"This reply was written without token probabilities: press {key} to record them, "
                        "then regenerate it.", severity="warning", timeout=10)
            return
        with_ids = self.engine.capabilities.token_ids and all(choice.id >= 0 for choice in choices)
        picked = await self.app.push_screen_wait(TokenViewScreen(choices, branch_possible=with_ids))
        if picked is not None:
            index, alternative = picked
            await self.branch_from_token(message, index, alternative)

    async def branch_from_token(self, message: StoredMessage, index: int, alternative: Alternative) -> None:
        """A new version of the reply: its tokens before `index`, then `alternative`, then the
        model goes on (recording token probabilities, so the new version can be looked at too)."""
        if self.busy():
            return
        choices = token_probs.of_message(message.meta)
        try:
            prefix = await answer(self.engine.decode([c.id for c in choices[:index]] + [alternative.id]))
            plan = self.session.plan_branch(message, index, alternative, prefix)
        except (SessionError, NotImplementedError) as exc:
            self.notify(str(exc), severity="warning")
            return
        except Exception as exc:  # the model went away meanwhile: a message, not a traceback
            self.notify(f"Cannot branch here: {exc}", severity="error")
            return
        self.record_token_probs = True
        self.status.update_info(probs=True)
        await self.generate_reply("branch", plan)

    # -- compare settings -----------------------------------------------------------------------

    def compare_columns(self, argument: str) -> list[Column]:
        """The settings named in `/compare` words: `current`, a preset, or ad-hoc `key=value,...`
        (on top of the current settings); by default the current ones and the three built-ins.
        Raises SettingsError naming a bad word."""
        words = argument.split() or ["current", *BUILTIN_PRESETS]
        if not 2 <= len(words) <= MAX_COLUMNS:
            raise SettingsError(f"compare 2 to {MAX_COLUMNS} settings, got {len(words)}")
        presets = {**BUILTIN_PRESETS, **getattr(self, "user_presets", {})}
        base: GenerationSettings = self.session.generation
        columns = []
        for word in words:
            if word == "current":
                settings = base
            elif word in presets:
                settings = base.with_updates(presets[word])
            elif "=" in word:
                settings = base.with_updates(parse_key_values(word.split(",")))
            else:
                raise SettingsError(f"{word!r} is not current, a preset ({', '.join(presets)}) or key=value,...")
            columns.append(Column(word, settings))
        if any(c.settings.do_sample for c in columns) and base.seed is None:
            seed = random.randrange(2**32)  # one seed for all: the settings make the difference
            columns = [Column(c.name, c.settings.with_updates({"seed": seed})) for c in columns]
        return columns

    @work
    async def action_compare(self, argument: str = "") -> None:
        if self.busy():
            return
        try:
            columns = self.compare_columns(argument)
            plan = self.session.plan_reply("regenerate")
        except (SettingsError, SessionError) as exc:
            self.notify(f"Compare: {exc}", severity="warning")
            return
        kept = await self.app.push_screen_wait(CompareScreen(self.engine, plan.messages, columns))
        if kept is None or not isinstance(kept.final, Finished):
            return
        self.session.start_reply(plan)
        self.session.reply_progress(kept.final.text)
        self.session.end_reply(kept.final)
        self.report_saves()
        await self.render_conversation()
        self.notify(f"Kept the reply written with {kept.name} as a new version.")
