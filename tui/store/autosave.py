"""Autosave for the app: the current conversation lives in memory and each change is written
through to the library. While the library cannot be written (or opened), changes wait in
memory, in order, and are retried on the next change or on `retry()`.

Ids are made here (uuid4 hex), so a change can be queued before the database has seen it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from tui.store.conversations import Library
from tui.store.meta import MessageMeta
from tui.store.model import (
    CURRENT_LEAF,
    DEFAULT_TITLE,
    UNCHANGED,
    Conversation,
    Default,
    Message,
    NotFoundError,
    StoreError,
    active_branch,
    auto_title,
    clean_title,
    new_id,
    newest_leaf,
    off_branch,
    subtree_ids,
    versions_of,
)
from tui.store.parts import Part, text_parts, with_text

_Change = Callable[[Library], object]

log = logging.getLogger(__name__)


def _json_copy(value: Any) -> Any:
    """A plain-JSON copy (what the library will store); TypeError now rather than at save time."""
    return None if value is None else json.loads(json.dumps(value))


def _meta_copy(meta: MessageMeta | None) -> MessageMeta | None:
    """A copy of `meta` as the library will read it back; TypeError now rather than at save time."""
    return None if meta is None else MessageMeta.from_dict(_json_copy(meta.to_dict()))


class AutoSaver:
    """Keeps the current conversation and saves every change to a Library.

    `last_error` is the latest save failure (None once everything is saved) and `pending` the
    number of changes waiting. Every change method updates memory first, so the app can go on
    whether or not the save worked. A new conversation is written with its first message, so
    an untouched "New chat" leaves nothing behind.
    """

    def __init__(
        self, library: Library | None, *, reopen: Callable[[], Library] | None = None, persist: bool = True
    ) -> None:
        """`library` may be None when it could not be opened; `reopen` is then tried on retry.
        With `persist=False` nothing is ever written (headless `--no-save`)."""
        self._library = library
        self._reopen = reopen
        self._persist = persist
        self.last_error: str | None = (
            None if library is not None or not persist else "the conversation library is not open"
        )
        self._queue: deque[_Change] = deque()
        self._conv: Conversation | None = None
        self._tree: list[Message] = []  # every message of the current conversation, insertion order
        self._leaf: str | None = None
        self._stored = False  # the current conversation's row is written or queued

    @classmethod
    def open(cls, path: Path | None = None) -> AutoSaver:
        """An AutoSaver on `Library(path)`; never raises: an open failure is in `last_error`."""

        def reopen() -> Library:
            return Library(path)

        try:
            return cls(reopen(), reopen=reopen)
        except StoreError as error:
            saver = cls(None, reopen=reopen)
            saver.last_error = str(error)
            return saver

    @classmethod
    def memory_only(cls) -> AutoSaver:
        """An AutoSaver that keeps the conversation in memory and never writes it."""
        return cls(None, persist=False)

    @property
    def library(self) -> Library | None:
        return self._library

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def conversation(self) -> Conversation | None:
        """The current conversation (active branch in `messages`); read it, do not change it."""
        return self._conv

    # -- choosing the conversation -------------------------------------------------------------

    def start(
        self,
        model: str | None = None,
        load_settings: dict[str, Any] | None = None,
        generation_settings: dict[str, Any] | None = None,
        system_prompt: str | None = None,
    ) -> str:
        """Begin a new conversation and return its id."""
        now = time.time()
        self._conv = Conversation(
            new_id(),
            DEFAULT_TITLE,
            now,
            now,
            model,
            _json_copy(load_settings or {}),
            _json_copy(generation_settings or {}),
            system_prompt,
        )
        self._tree, self._leaf, self._stored = [], None, False
        return self._conv.id

    def resume(self, conv_id: str, library: Library | None = None) -> Conversation:
        """Make a stored conversation current, read from `library` or the saver's own (pending
        changes are saved first). Raises StoreError when that or reading fails, NotFoundError
        for an unknown id."""
        if library is None:
            if not self.retry() or self._library is None:
                raise StoreError(self.last_error or "the conversation library is not open")
            library = self._library
        conv = library.get(conv_id)
        self._tree = library.messages(conv_id)
        self._leaf = conv.messages[-1].id if conv.messages else None
        self._conv, self._stored = conv, True
        return conv

    # -- changes -------------------------------------------------------------------------------

    def user_message(self, content: str | tuple[Part, ...], parent_id: str | None | Default = CURRENT_LEAF) -> Message:
        """Add a user message (its text, or its parts) after the active leaf, or under `parent_id`
        (an edit: a new version)."""
        return self._add("user", content, parent_id, "ok", None)

    def assistant_message(
        self,
        content: str,
        status: str = "ok",
        meta: MessageMeta | None = None,
        parent_id: str | None | Default = CURRENT_LEAF,
    ) -> Message:
        """Add a reply after the active leaf, or under `parent_id` (a regeneration: a new version)."""
        return self._add("assistant", content, parent_id, status, meta)

    def tool_message(self, content: str | tuple[Part, ...], meta: MessageMeta, status: str = "ok") -> Message:
        """Add a tool's result after the active leaf (`meta.tool_result` says which call it answers)."""
        return self._add("tool", content, CURRENT_LEAF, status, meta)

    def update_message(
        self, message_id: str, content: str | None = None, status: str | None = None, meta: MessageMeta | None = None
    ) -> Message:
        """Change a message in place (None leaves a field as it is)."""
        conv, index = self._current(), self._index(message_id)
        old = self._tree[index]
        meta = _meta_copy(meta)
        self._tree[index] = replace(
            old,
            parts=old.parts if content is None else with_text(old.parts, content),
            status=old.status if status is None else status,
            meta=old.meta if meta is None else meta,
        )
        conv.updated = time.time()
        self._refresh()
        self._save(partial(Library.update_message, message_id=message_id, content=content, status=status, meta=meta))
        return self._tree[index]

    def delete_message(self, message_id: str) -> None:
        """Delete a message and its descendants; an active leaf among them moves to its parent."""
        conv, parent = self._current(), self._tree[self._index(message_id)].parent_id
        doomed = subtree_ids(self._tree, message_id)
        self._tree = [m for m in self._tree if m.id not in doomed]
        if self._leaf in doomed:
            self._leaf = parent
        conv.updated = time.time()
        self._refresh()
        self._save(partial(Library.delete_message, message_id=message_id))

    def branch(self, upto: str, title: str) -> Conversation:
        """Make a new conversation current: a copy of the active branch down to message `upto`
        (each message with its record), called `title`, with the same settings. The one it came
        from stays as it is."""
        source = self._current()
        ids = [m.id for m in source.messages]
        if upto not in ids:
            raise NotFoundError(f"no message with id {upto!r} on the active branch")
        self.start(source.model, source.load_settings, source.generation_settings, source.system_prompt)
        branch = self._current()
        branch.title, branch.origin_id, branch.origin_message_id = title, source.id, upto
        for message in source.messages[: ids.index(upto) + 1]:
            self._add(message.role, message.parts, CURRENT_LEAF, message.status, message.meta)
        return self._current()

    def versions(self, message_id: str) -> list[Message]:
        """The versions of a message (it and its siblings), oldest first."""
        self._current()
        return versions_of(self._tree, message_id)

    def switch_version(self, message_id: str) -> Conversation:
        """Make the branch through `message_id` active, down to its newest descendant."""
        conv = self._current()
        self._index(message_id)
        self._leaf = newest_leaf(self._tree, message_id)
        self._refresh()
        self._save(partial(Library.switch_version, conv_id=conv.id, message_id=message_id))
        return conv

    def set_settings(
        self,
        *,
        model: str | None | Default = UNCHANGED,
        load_settings: dict[str, Any] | Default = UNCHANGED,
        generation_settings: dict[str, Any] | Default = UNCHANGED,
        system_prompt: str | None | Default = UNCHANGED,
    ) -> None:
        """Change the current conversation's settings; UNCHANGED ones keep their value."""
        conv = self._current()
        changes: dict[str, Any] = {}
        if not isinstance(model, Default):
            changes["model"] = conv.model = model
        if not isinstance(system_prompt, Default):
            changes["system_prompt"] = conv.system_prompt = system_prompt
        if not isinstance(load_settings, Default):
            changes["load_settings"] = conv.load_settings = _json_copy(load_settings)
        if not isinstance(generation_settings, Default):
            changes["generation_settings"] = conv.generation_settings = _json_copy(generation_settings)
        if self._stored:
            self._save(partial(Library.set_settings, conv_id=conv.id, **changes))

    def rename(self, title: str) -> None:
        conv = self._current()
        conv.title = clean_title(title)
        if self._stored:
            self._save(partial(Library.rename, conv_id=conv.id, title=conv.title))

    def retry(self) -> bool:
        """Save every pending change, oldest first; True when nothing is left pending.

        A change to a conversation deleted meanwhile (elsewhere) is dropped."""
        if self._library is None:
            if self._reopen is None:
                return False
            try:
                self._library = self._reopen()
            except StoreError as error:
                self.last_error = str(error)
                return False
        while self._queue:
            try:
                self._queue[0](self._library)
            except StoreError as error:
                self.last_error = str(error)
                return False
            except NotFoundError as error:  # its conversation or message was deleted meanwhile
                log.info("a queued write was dropped: %s", error)
            self._queue.popleft()
        self.last_error = None
        return True

    # -- internals -----------------------------------------------------------------------------

    def _add(
        self,
        role: str,
        content: str | tuple[Part, ...],
        parent_id: str | None | Default,
        status: str,
        meta: MessageMeta | None,
    ) -> Message:
        conv = self._current()
        parent = self._leaf if isinstance(parent_id, Default) else parent_id
        if parent is not None:
            self._index(parent)
        message = Message(
            new_id(),
            role,
            text_parts(content) if isinstance(content, str) else content,
            time.time(),
            parent,
            status,
            _meta_copy(meta) or MessageMeta(),
        )
        if not self._stored:
            self._save(
                partial(
                    Library.create,
                    model=conv.model,
                    load_settings=conv.load_settings,
                    generation_settings=conv.generation_settings,
                    system_prompt=conv.system_prompt,
                    title=conv.title,
                    conv_id=conv.id,
                    created=conv.created,
                    origin_id=conv.origin_id,
                    origin_message_id=conv.origin_message_id,
                )
            )
            self._stored = True
        conv.title = auto_title(conv.title, role, message.content, any(m.role == "user" for m in self._tree))
        self._tree.append(message)
        self._leaf, conv.updated = message.id, message.created
        self._refresh()
        self._save(
            partial(
                Library.add_message,
                conv_id=conv.id,
                role=role,
                content=message.parts,
                parent_id=parent,
                status=status,
                meta=message.meta,
                message_id=message.id,
                created=message.created,
            )
        )
        return message

    def _save(self, change: _Change) -> None:
        if self._persist:
            self._queue.append(change)
            self.retry()

    def _current(self) -> Conversation:
        if self._conv is None:
            raise RuntimeError("no current conversation: call start() or resume() first")
        return self._conv

    def _index(self, message_id: str) -> int:
        for index, message in enumerate(self._tree):
            if message.id == message_id:
                return index
        raise NotFoundError(f"no message with id {message_id!r} in the current conversation")

    def _refresh(self) -> None:
        conv = self._current()
        conv.messages = active_branch(self._tree, self._leaf)
        conv.other_versions = off_branch(self._tree, conv.messages)
