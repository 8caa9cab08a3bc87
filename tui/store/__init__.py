"""The conversation library: SQLite storage with message versions and full-text search
(`conversations`), autosave that survives an unwritable disk (`autosave`), JSON/Markdown
export and import (`files`) and the `list / export / import` CLI commands (`commands`).
Standard library only (plus `tui.paths`)."""

from tui.store.autosave import AutoSaver
from tui.store.commands import export_command, import_command, list_command
from tui.store.conversations import (
    CURRENT_LEAF,
    DEFAULT_TITLE,
    UNCHANGED,
    Conversation,
    ConversationSummary,
    Library,
    Message,
    NotFoundError,
    StoreError,
)
from tui.store.files import (
    ImportFormatError,
    export_json,
    export_markdown,
    import_conversation,
    terminal_safe,
    write_file_atomic,
)

__all__ = [
    "AutoSaver", "Library", "Conversation", "ConversationSummary", "Message", "StoreError",
    "NotFoundError", "CURRENT_LEAF", "UNCHANGED", "DEFAULT_TITLE", "ImportFormatError",
    "export_json", "export_markdown", "import_conversation", "terminal_safe", "write_file_atomic",
    "list_command", "export_command", "import_command",
]
