"""The conversation being chatted in, without Textual: what the app and headless mode share.

A ChatSession holds the conversation (through an AutoSaver, so every change is saved as it
happens), the generation settings and system prompt for the next turns, and the reply being
written. It decides what a send, regenerate or continue answers, builds the messages the model
sees, and saves a reply's end with the status its ending maps to. The app's chat screen and
`chatui --prompt` both drive one; neither builds a history or maps a status of its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tui import token_probs
from tui.core.attachments import AttachmentError, fit_problem, refuse_images, too_long
from tui.engine.backend import Backend
from tui.engine.events import Alternative, Failed, Finished, TokenChoice
from tui.engine.loading import ModelInfo
from tui.engine.settings import LOAD_FIELDS, GenerationSettings, LoadSettings, SettingsError, format_value
from tui.engine.sources import DEFAULT_MODEL_NAME
from tui.store import AutoSaver, Conversation, Library, Message
from tui.store.meta import MessageMeta, ReplyMetrics, ToolResult
from tui.store.model import model_content, model_history
from tui.store.parts import Attachment, FilePart, ImagePart, Part, TextPart
from tui.tools.calls import ToolCall, calls_from_parsed, parse_tool_calls

# How a reply ended (`Finished.reason`) → the status it is stored with.
REPLY_STATUS = {"stop": "ok", "length": "length", "stopped": "stopped"}
# A reply is saved as it streams, at most this often (one row updated; a kill -9 or a power cut
# loses at most this much). Until it ends it is stored as "interrupted".
PROGRESS_SAVE_S = 2.0


def reply_status(final: Finished | Failed) -> str:
    if isinstance(final, Failed):
        return "failed"
    return REPLY_STATUS.get(final.reason, "ok")


def added_nothing(reply: Reply, final: Finished | Failed) -> bool:
    """A continue that the model ended at once (end of turn) without adding any text."""
    return (
        reply.kind == "continue" and isinstance(final, Finished) and final.reason == "stop" and not final.text.strip()
    )


class SessionError(Exception):
    """What the user asked cannot be done now; str() is one line to show them."""


@dataclass
class Reply:
    """A reply being written: the messages the model answers, and where the reply is saved."""

    kind: str  # "send", "regenerate", "continue" or "branch"
    messages: list[dict[str, str]]  # what the model is given
    parent_id: str | None  # the message the reply answers
    continues: Message | None = None  # the stored reply being continued, if any
    replaces: Message | None = None  # regenerate: the reply this one is a new version of
    message_id: str = ""  # the stored reply, saved as it streams (set by start_reply)
    prefix: str = ""  # a branch from a token: the reply's text up to and with the token picked
    text: str = ""  # what the model has added so far
    saved_at: float = 0.0  # time.monotonic() of the last save
    choices: list[TokenChoice] = field(default_factory=list)  # token probabilities, when recorded

    @property
    def base(self) -> str:
        """Text the reply starts from (a continued reply's, a branch's prefix), before what the
        model adds."""
        return self.continues.content if self.continues else self.prefix

    @property
    def content(self) -> str:
        return self.base + self.text


@dataclass
class SavedSettings:
    """What a conversation was held with, checked: what can be restored and what was wrong."""

    generation: GenerationSettings | None
    system_prompt: str
    load: LoadSettings | None  # None: the saved load options are missing or invalid
    problems: list[str] = field(default_factory=list)


class ChatSession:
    def __init__(
        self,
        saver: AutoSaver,
        generation: GenerationSettings | None = None,
        system_prompt: str = "",
        load_settings: LoadSettings | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.saver = saver
        self.generation = generation or GenerationSettings()
        self.system_prompt = system_prompt or ""
        self.load_settings = load_settings or LoadSettings()  # the last load asked for
        self.backend = backend  # which model is loaded is the backend's to say
        self.reply: Reply | None = None

    # -- the conversation -----------------------------------------------------------------------

    @property
    def conversation(self) -> Conversation | None:
        return self.saver.conversation

    @property
    def messages(self) -> list[Message]:
        """The active branch of the conversation."""
        conv = self.saver.conversation
        return conv.messages if conv else []

    def loaded_model(self) -> tuple[str, LoadSettings]:
        """The model replies come from and its load settings (recorded with the conversation at
        each reply): the backend's, or the load asked for while none is loaded."""
        info = self.backend.info if self.backend is not None else None
        settings = (self.backend.load_settings if self.backend is not None else None) or self.load_settings
        return (info.name if info is not None else settings.model or DEFAULT_MODEL_NAME), settings

    def settings_record(self) -> dict[str, Any]:
        model, load_settings = self.loaded_model()
        return {
            "model": model,
            "load_settings": load_settings.as_dict(),
            "generation_settings": self.generation.as_dict(),
            "system_prompt": self.system_prompt or None,
        }

    def new(self) -> str:
        """Start a new conversation (written with its first message); returns its id. A reply
        being written is saved as stopped first."""
        self.leave_reply()
        return self.saver.start(**self.settings_record())

    def open(self, conv_id: str, library: Library | None = None) -> Conversation:
        """Make a stored conversation current (raises StoreError / NotFoundError). A reply being
        written is saved as stopped first."""
        self.leave_reply()
        return self.saver.resume(conv_id, library)

    def branch(self, upto: Message) -> Conversation:
        """A new chat holding the conversation down to `upto` (on the active branch), made
        current; the original is unchanged. A reply being written is saved as stopped first."""
        self.leave_reply()
        conv = self.saver.conversation
        title = f"{conv.title} (branch)" if conv is not None else "Branch"
        return self.saver.branch(upto.id, title)

    def saved_settings(self, conv: Conversation) -> SavedSettings:
        """The settings `conv` was held with, checked against today's specs."""
        problems: list[str] = []
        try:
            generation = GenerationSettings().with_updates(conv.generation_settings or {})
        except SettingsError as exc:
            generation = None
            problems.append(f"the saved generation settings are invalid ({exc})")
        wanted = {k: v for k, v in (conv.load_settings or {}).items() if k in LOAD_FIELDS}
        # Which variable holds a key is never taken from a file (it could name any secret for any
        # server): the current one stays for the current server, a saved other server gets none.
        wanted.pop("api_key_env", None)
        current = self.loaded_model()[1]
        if wanted.get("endpoint") != current.endpoint:
            wanted["api_key_env"] = None
        try:
            load = current.replace(**wanted) if wanted else None
        except (SettingsError, TypeError) as exc:
            load = None
            problems.append(f"the saved model options are invalid ({exc})")
        return SavedSettings(generation, conv.system_prompt or "", load, problems)

    def history(self, messages: list[Message] | None = None) -> list[dict[str, str]]:
        """What the model sees: the system prompt, then every message but failed replies."""
        return model_history(self.system_prompt, self.messages if messages is None else messages)

    # -- changes --------------------------------------------------------------------------------

    def add_user_message(
        self, text: str, edit_of: Message | None = None, attachments: Sequence[Attachment] = ()
    ) -> Message:
        """Add the user's message (with its attachments, first) after the last one, or as a new
        version of `edit_of`, with the attachments given (the edited one's, as the user left them)."""
        parts = (*attachments, TextPart(text))
        content = parts if len(parts) > 1 else text
        if edit_of is not None:
            return self.saver.user_message(content, parent_id=edit_of.parent_id)
        return self.saver.user_message(content)

    def attachment_problem(
        self, attachments: Sequence[Attachment], text: str, edit_of: Message | None = None, used: int = 0
    ) -> str | None:
        """Why a message with these attachments cannot be sent to the loaded model, in one line:
        images to a model that reads text only, or more tokens than the context has left before
        it (before `edit_of` for an edit; the backend counts them, blocking on its thread). None
        when it can be sent. `used`: the tokens the chat so far is known to take (the status bar's
        count), so that the history (its images above all) is not counted again."""
        if not attachments or self.backend is None:
            return None
        model, _ = self.loaded_model()
        try:
            refuse_images(attachments, model, self.backend.capabilities.images)
        except AttachmentError as exc:
            return str(exc)
        info = self.backend.info
        context = info.context_size if info is not None else 0
        documents = [attachment for attachment in attachments if isinstance(attachment, FilePart)]
        problem = too_long(documents, context)
        if problem:
            return problem
        before = self.messages
        if edit_of is not None and edit_of in before:
            before = before[: before.index(edit_of)]
        history = self.history(before)
        message = {"role": "user", "content": model_content((*attachments, TextPart(text)))}
        names = [attachment.name for attachment in attachments]
        if used and edit_of is None:  # the message alone: within a few tokens of its share of the whole
            needed = self.backend.count_tokens([message]).result()
        else:
            used = self.backend.count_tokens(history).result() if history else 0
            needed = self.backend.count_tokens([*history, message]).result() - used
        return fit_problem(names, needed, used, context, int(self.generation.max_new_tokens))

    def set_generation(self, updates: dict[str, Any], context_size: int | None = None) -> GenerationSettings:
        """Apply validated generation values (all or nothing); raises SettingsError if bad."""
        candidate = self.generation.with_updates(updates)
        if context_size and candidate.max_new_tokens >= context_size:
            raise SettingsError(
                f"max_new_tokens: {candidate.max_new_tokens} does not fit the model's context of {context_size} tokens"
            )
        self.generation = candidate
        return candidate

    def delete_message(self, message: Message) -> None:
        """Delete `message` and everything that follows it, on every branch."""
        self.saver.delete_message(message.id)

    def later_count(self, message: Message) -> int:
        """How many messages follow `message` on the active branch."""
        index = next(i for i, m in enumerate(self.messages) if m.id == message.id)
        return len(self.messages) - 1 - index

    def version_label(self, message: Message) -> str:
        versions = self.saver.versions(message.id)
        if len(versions) < 2:
            return ""
        index = next(i for i, v in enumerate(versions) if v.id == message.id)
        return f"version {index + 1}/{len(versions)}"

    def switch_version(self, message: Message, step: int) -> Message:
        """Make the version `step` away from `message` active; returns it."""
        versions = self.saver.versions(message.id)
        index = next(i for i, v in enumerate(versions) if v.id == message.id) + step
        if len(versions) < 2:
            raise SessionError("This message has one version.")
        if not 0 <= index < len(versions):
            raise SessionError("No other version that way.")
        self.saver.switch_version(versions[index].id)
        return versions[index]

    # -- replies --------------------------------------------------------------------------------

    def plan_reply(self, kind: str) -> Reply:
        """What a send, regenerate or continue would answer; raises SessionError when there is
        nothing it can work on. A last user message without a reply gets one either way."""
        messages = list(self.messages)
        last = messages[-1] if messages else None
        if last is None:
            raise SessionError(
                "There is nothing to reply to yet."
                if kind == "send"
                else f"There is no reply to {'regenerate' if kind == 'regenerate' else 'continue'}."
            )
        if last.role in ("user", "tool"):  # unanswered (a tool's result: the model goes on from it)
            return Reply("send", self.history(messages), last.id)
        if kind == "regenerate":
            parent = messages[-2].id if len(messages) > 1 else None
            return Reply(kind, self.history(messages[:-1]), parent, replaces=last)
        if kind == "continue":
            if last.status == "failed":
                raise SessionError("The last reply failed: regenerate it instead.")
            return Reply(kind, self.history(messages), last.parent_id, continues=last)
        raise SessionError("The last message is a reply: write a message first.")

    def plan_branch(self, message: Message, index: int, alternative: Alternative, prefix_text: str) -> Reply:
        """A new version of the last reply that keeps its first `index` tokens, takes `alternative`
        instead of token `index`, and lets the model go on from there (`prefix_text` is those
        tokens as the tokenizer writes them)."""
        messages = list(self.messages)
        if not messages or messages[-1].id != message.id or message.role != "assistant":
            raise SessionError("Branch from a token of the last reply.")
        choices = token_probs.of_message(message.meta)
        if not 0 <= index < len(choices):
            raise SessionError("That reply has no recorded token there.")
        picked = choices[index]
        before = {a.id: a for a in picked.top_raw}
        after = {a.id: a for a in picked.top}
        raw = before[alternative.id].logprob if alternative.id in before else alternative.logprob
        chosen = TokenChoice(
            alternative.id,
            alternative.token,
            after[alternative.id].logprob if alternative.id in after else -1e9,
            raw,
            picked.top,
            picked.top_raw,
        )
        history = self.history(messages[:-1]) + [{"role": "assistant", "content": prefix_text}]
        return Reply(
            "branch",
            history,
            message.parent_id,
            replaces=message,
            prefix=prefix_text,
            choices=[*choices[:index], chosen],
        )

    def start_reply(self, reply: Reply) -> Reply:
        """The reply is being written: it is stored at once (as "interrupted" until it ends, so a
        crash leaves what it wrote), and the conversation records the settings it is written with."""
        self.reply = reply
        self.saver.set_settings(**self.settings_record())
        if reply.continues is not None:
            stored = self.saver.update_message(reply.continues.id, status="interrupted")
        else:
            stored = self.saver.assistant_message("", status="interrupted", parent_id=reply.parent_id)
        reply.message_id, reply.saved_at = stored.id, time.monotonic()
        return reply

    def reply_progress(self, text: str) -> None:
        """More of the reply arrived; it is saved if the last save is PROGRESS_SAVE_S old."""
        reply = self.reply
        if reply is None:
            return
        reply.text += text
        now = time.monotonic()
        if now - reply.saved_at >= PROGRESS_SAVE_S:
            reply.saved_at = now
            self.saver.update_message(reply.message_id, content=reply.content)

    def reply_token_probs(self, choices: Sequence[TokenChoice]) -> None:
        """Token probabilities of the reply being written (kept with it when it ends)."""
        if self.reply is not None:
            self.reply.choices.extend(choices)

    def end_reply(self, final: Finished | Failed) -> Message:
        """Save the reply that ended (as `final` says) and return the stored message."""
        reply, self.reply = self.reply, None
        if reply is None:
            raise RuntimeError("no reply is being written")
        if reply.continues is not None and added_nothing(reply, final):
            # A finished reply the model had nothing to add to stays as it was.
            return self.saver.update_message(reply.message_id, status=reply.continues.status)
        metrics = final.metrics
        recorded = ReplyMetrics.from_dict(metrics.as_dict()) if metrics is not None and metrics.new_tokens else None
        if recorded is not None and reply.continues is not None:  # the whole reply's figures
            recorded = recorded.after(reply.continues.meta.metrics)
        before = token_probs.of_message(reply.continues.meta) if reply.continues is not None else []
        # A continued reply written without them keeps none: part of a reply's tokens would be
        # read as the whole reply (the token view, a branch's prefix).
        unrecorded_start = reply.continues is not None and bool(reply.continues.content) and not before
        choices = token_probs.encode(before + reply.choices) if reply.choices and not unrecorded_start else None
        adapters = final.adapters if isinstance(final, Finished) and final.adapters else None
        meta = (
            MessageMeta(recorded, choices, adapters=adapters)
            if recorded is not None or choices is not None or adapters
            else None
        )
        return self.saver.update_message(
            reply.message_id, content=reply.base + final.text, status=reply_status(final), meta=meta
        )

    # -- tool calls -------------------------------------------------------------------------------

    def take_tool_calls(self, reply: Message, parsed: dict[str, Any] | None = None) -> list[ToolCall]:
        """The tool calls written in `reply` (the last reply): stored with it (its content is then
        what it said around them), ready for the user to approve. [] when there are none.
        `parsed` is the tokenizer's own parse of it, when it has a response template."""
        content, calls = calls_from_parsed(parsed) or parse_tool_calls(reply.content)
        if not calls or reply.status == "failed":
            return []
        meta = replace(reply.meta, tool_calls=[call.as_message_part() for call in calls])
        self.saver.update_message(reply.id, content=content, meta=meta)
        return calls

    def add_tool_result(
        self, call: ToolCall, server: str, text: str, outcome: str, images: Sequence[tuple[str, bytes]] = ()
    ) -> Message:
        """A call's result (`outcome`: "ok", "error", "denied", "stopped"), what the model sees
        next; `images` (MIME type, bytes) are the tool's image content, kept as image parts."""
        meta = MessageMeta(tool_result=ToolResult(call.id, call.name, server, outcome, call.arguments))
        pictures: tuple[Part, ...] = tuple(
            ImagePart(f"{call.name}-{n}.{mime.rpartition('/')[2]}", mime, data)
            for n, (mime, data) in enumerate(images, 1)
        )
        content: str | tuple[Part, ...] = (*pictures, TextPart(text)) if pictures else text
        return self.saver.tool_message(
            content, meta, status="ok" if outcome in ("ok", "error", "denied") else "stopped"
        )

    def leave_reply(self) -> Message | None:
        """The user leaves a reply being written (quit, a new chat, another chat): what it wrote
        so far is saved as stopped, as Esc would. Returns the stored message, if there was one."""
        reply, self.reply = self.reply, None
        if reply is None:
            return None
        return self.saver.update_message(reply.message_id, content=reply.content, status="stopped")

    # -- describing ------------------------------------------------------------------------------

    def status_report(self, info: ModelInfo | None, state: str) -> str:
        lines = ["**Status**", ""]
        if info:
            lines += [
                f"- model: `{info.name}` ({info.source})",
                f"- device: {info.device} · dtype: {info.dtype} · quantization: {info.quantization} · "
                f"attention: {info.attn_implementation}",
                f"- context: {info.context_size} tokens · footprint: {info.footprint_bytes / 2**20:,.0f} MB",
            ]
        else:
            lines.append(f"- model: not loaded ({state})")
        lines.append("- generation: `" + self.generation.describe() + "`")
        changed = self.generation.changed()
        lines.append(
            "- changed from the defaults: "
            + ("`" + " ".join(f"{k}={format_value(v)}" for k, v in changed.items()) + "`" if changed else "none")
        )
        lines.append(f"- system prompt: {self.system_prompt!r}" if self.system_prompt else "- system prompt: none")
        conv = self.saver.conversation
        if conv is not None:
            saved = "saved" if not self.saver.pending else f"{self.saver.pending} changes not saved yet"
            lines.append(f"- conversation: {conv.id[:8]} “{conv.title}” ({saved})")
        return "\n".join(lines)
