"""Persistence: the conversation library (SQLite, message versions, full-text search;
`conversations`; messages' typed parts and metadata: `parts`, `meta`; images and documents stored
once each), autosave that survives an unwritable disk (`autosave`), conversation files
(JSON/Markdown export and import, the atomic writer; `files`, their attachments: `file_parts`,
writing an export with its images: `exports`) and config.toml (`config`).

`conversations`, `autosave`, `files`, `file_parts`, `exports`, `parts` and `meta` use the standard
library (and `tui.paths`, `tui.text`);
`config` also uses tomli-w, and the engine's setting specs (`tui.engine.settings`, no torch) to
check values."""

from tui.store.autosave import AutoSaver
from tui.store.conversations import Library
from tui.store.files import (
    ImportFormatError,
    export_as,
    export_json,
    export_markdown,
    export_tf_chat,
    import_conversation,
    write_file_atomic,
)
from tui.store.model import (
    DEFAULT_TITLE,
    UNCHANGED,
    Conversation,
    ConversationSummary,
    Message,
    NotFoundError,
    StoreError,
)

__all__ = [
    "AutoSaver",
    "Library",
    "Conversation",
    "ConversationSummary",
    "Message",
    "StoreError",
    "NotFoundError",
    "UNCHANGED",
    "DEFAULT_TITLE",
    "ImportFormatError",
    "export_as",
    "export_json",
    "export_markdown",
    "export_tf_chat",
    "import_conversation",
    "write_file_atomic",
]
