"""The reply being written, on the chat screen: starting it (send, regenerate, continue, a branch
from a token all come here), its streamed text and live figures, its end, and leaving it when
the chat changes; and the user's draft read ahead while they pause typing. A part of the chat
screen (screens/chat.py); the engine's events reach it through `tui.ui.bridge`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from textual.css.query import NoMatches
from textual.timer import Timer
from textual.worker import get_current_worker

from tui.core.chat_session import Reply, SessionError, added_nothing
from tui.engine import Failed, Finished, Turn
from tui.ui.bridge import ReplyDelta, ReplyEnded, ReplyStarted, pump_turn
from tui.ui.screens.chat_transcript import stats_text
from tui.ui.slash import is_slash_command
from tui.ui.state import AppState
from tui.ui.widgets.message import MessageView

if TYPE_CHECKING:
    from tui.ui.screens.chat import ChatScreen

PREFILL_PAUSE_S = 0.6  # the user paused typing this long: the model reads their draft ahead
NO_STREAM_NOTE = "num_beams={beams}: beam search cannot stream; the reply appears when it is done."
TOKEN_VIEW_TOP = 10  # alternatives recorded per token for the token view


class ReplyStream:
    """The reply in flight (at most one) and its live figures."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen
        self.pending_send = False  # a message waits for the model
        self.record_token_probs = False  # replies record token probabilities (the token view)
        self._turn: Turn | None = None
        self._turn_id = 0
        self._view: MessageView | None = None
        self._live_tokens = 0
        self._live_first_at: float | None = None
        self._live_prompt_tokens = 0
        self._ticker: Timer | None = None
        self._prefill_timer: Timer | None = None

    @property
    def turn(self) -> Turn | None:
        """The reply in flight, or None."""
        return self._turn

    @property
    def running(self) -> bool:
        return self._turn is not None

    @property
    def live_tokens(self) -> int:
        """Tokens of the reply in flight shown so far."""
        return self._live_tokens

    # -- whether a reply may start ------------------------------------------------------------------

    def generating(self) -> bool:
        """Say that a reply is being written (and return True), or return False."""
        screen = self.screen
        if screen.state is AppState.GENERATING:
            screen.notify(
                f"Wait for the reply or press {screen.keymap.key('chat.stop')} to stop it.", severity="warning"
            )
            return True
        return False

    def busy(self) -> bool:
        """Say why a reply cannot start now (and return True), or return False."""
        if self.generating():
            return True
        if self.screen.state is not AppState.READY:
            self.screen.notify("No model is ready yet.", severity="warning")
            return True
        return False

    # -- the draft, read ahead -------------------------------------------------------------------

    def draft_changed(self) -> None:
        if self._prefill_timer is not None:
            self._prefill_timer.stop()
        self._prefill_timer = self.screen.set_timer(PREFILL_PAUSE_S, self._prefill_draft)

    def _prefill_draft(self) -> None:
        """While the user pauses typing, the model reads the conversation and their draft into
        its KV cache (`Backend.prefill`): on Enter only what they typed since is left to read,
        so the first token comes sooner in a long chat."""
        self._prefill_timer = None
        screen = self.screen
        try:
            draft = screen.prompt_input.text.strip()
        except NoMatches:  # the app is closing
            return
        if not draft or is_slash_command(draft) or screen.state is not AppState.READY or screen.editing is not None:
            return
        screen.engine.prefill(
            screen.session.history() + [{"role": "user", "content": draft}], screen.session.generation
        )

    # -- the reply -------------------------------------------------------------------------------

    async def start(self, kind: str, plan: Reply | None = None) -> None:
        """The one streaming path: send, regenerate, continue and a branch from a token (planned
        by the caller) all come here."""
        screen, session = self.screen, self.screen.session
        self.pending_send = False
        try:
            reply = session.start_reply(plan or session.plan_reply(kind))
        except SessionError as exc:
            screen.notify(str(exc), severity="warning")
            return
        views = screen.transcript.views
        if reply.continues is not None:
            view = views[reply.continues.id]
        else:
            if reply.replaces is not None and reply.replaces.id in views:
                await views.pop(reply.replaces.id).remove()
            view = await screen.chat.add(screen.transcript.message_view("assistant", reply.base))
        self._view = view
        view.set_status("ok")
        view.set_stats("")
        view.start_stream()
        self._turn_id += 1
        self._turn = turn = screen.engine.generate(
            reply.messages,
            session.generation,
            TOKEN_VIEW_TOP if self.record_token_probs else 0,
            screen.tool_calls.loop.offered(),
        )
        screen.state = AppState.GENERATING
        self._live_tokens, self._live_first_at, self._live_prompt_tokens = 0, None, 0
        screen.transcript.forget_context_count()
        screen.status.update_info(detail="", tok_s=None, ttft_s=None)
        self._ticker = screen.set_interval(0.25, self._tick_status)
        screen.collector.reply_started()
        turn_id, active = self._turn_id, screen.activity.is_active
        screen.run_worker(
            lambda: pump_turn(screen, turn, turn_id, active, lambda: get_current_worker().is_cancelled),
            thread=True,
            group="reply",
            exit_on_error=False,
        )

    def stop(self) -> bool:
        """Stop the reply in flight (what it wrote is kept); False when there is none."""
        if self._turn is None:
            return False
        self._turn.stop()
        return True

    def _tick_status(self) -> None:
        """Live figures of the reply being written: tok/s, and the context it fills so far."""
        info: dict[str, Any] = {}
        if self._live_prompt_tokens:
            info["context_used"] = self._live_prompt_tokens + self._live_tokens
        if self._live_first_at is not None and self._live_tokens > 1:
            elapsed = time.perf_counter() - self._live_first_at
            if elapsed > 0:
                info["tok_s"] = (self._live_tokens - 1) / elapsed
        if info:
            self.screen.status.update_info(**info)

    def started(self, message: ReplyStarted) -> None:
        if message.turn_id == self._turn_id:
            self._live_prompt_tokens = message.prompt_tokens
            self.screen.status.update_info(context_used=message.prompt_tokens)
            if not message.streams:
                beams = self.screen.session.generation.values.get("num_beams")
                self.screen.notify(NO_STREAM_NOTE.format(beams=beams))

    def delta(self, message: ReplyDelta) -> None:
        if message.turn_id != self._turn_id or self._view is None:
            message.shown.set()
            return
        self._live_tokens, self._live_first_at = message.tokens, message.first_token_at
        session = self.screen.session
        if message.choices:
            session.reply_token_probs(message.choices)
        session.reply_progress(message.text)
        self._view.append_later(message.text, shown=message.shown)

    async def ended(self, message: ReplyEnded) -> None:
        if message.turn_id != self._turn_id or self._view is None:
            return
        screen, session = self.screen, self.screen.session
        if self._ticker is not None:
            self._ticker.stop()
        screen.collector.reply_ended()
        view, final = self._view, message.final
        self._turn, self._view = None, None
        if message.choices:
            session.reply_token_probs(message.choices)
        if session.reply is not None and added_nothing(session.reply, final):
            screen.notify("The model had nothing to add to this reply.")
        stored = session.end_reply(final)
        screen.files.report_saves()
        if isinstance(final, Failed):
            screen.notify(final.error, title="Generation failed", severity="error", timeout=10)
        elif final.dropped_messages:
            screen.notify(
                f"{final.dropped_messages} oldest messages were left out to fit the context.", severity="warning"
            )
        view.message_id = stored.id
        screen.transcript.views[stored.id] = view
        view.finish_later(stored.content, status=stored.status, stats=stats_text(stored.meta))
        view.set_version(session.version_label(stored))
        if isinstance(final, Failed):
            await screen.transcript.add_note(final.error, role="error")
        screen.state = AppState.READY
        screen.status.update_info(detail="")
        screen.transcript.show_figures()
        screen.loader.refresh_memory()
        if isinstance(final, Finished):
            await screen.tool_calls.after_reply(stored)

    def leave(self) -> None:
        """The conversation is being left (quit, a new chat, another chat) while a reply is
        written: stop it, and save what it wrote so far as stopped, as Esc does."""
        screen = self.screen
        if self._turn is not None:
            self._turn.stop()
        self._turn_id += 1  # ignore the events of a reply still winding down
        self._turn, self._view = None, None
        screen.workers.cancel_group(screen, "reply")  # its worker stops listening, ended or not
        if screen.session.leave_reply() is not None and screen.is_attached:
            screen.files.report_saves()
        if self._ticker is not None:
            self._ticker.stop()
        screen.collector.reply_ended()
        if screen.state is AppState.GENERATING:
            screen.state = AppState.READY
