"""Every action a user can take, in one table: its binding id, default key, title, help text,
slash command and where it applies. From it come the key bindings, the command palette, the F1
help, the slash-command dispatch and every key named in text, always with the user's own keys
(config.toml `[keys]`, by binding id).

Scopes: "app" actions run on the app, "chat" actions on the chat screen, "prompt" actions in the
prompt, "message" actions on a focused message; the others on one modal screen each: "browser"
(conversations), "models" (the model picker), "download" (a model's download), "token_view",
"compare", "tool_approval", "confirm" (a yes/no question), "text_prompt" (a line of text), "help",
"tools" and "image_viewer". The command palette offers "app" and "chat"
actions; an action with no key is reached from the palette or its slash command.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Action:
    id: str  # the binding id (config.toml [keys]), e.g. "chat.new"
    action: str  # the Textual action it runs, e.g. "new_chat"
    key: str | None  # default key(s), comma-separated
    title: str
    help: str
    scope: str = "chat"
    slash: tuple[str, ...] = ()  # slash command names, the first one shown in help
    argument: str = ""  # what the slash command takes, e.g. "key=value ..."
    footer: bool = True  # shown in the footer when it has a key
    palette: bool = True  # offered in the command palette
    priority: bool = False


# A table: one action to a few lines reads better than one argument to a line.
# fmt: off
ACTIONS: tuple[Action, ...] = (
    Action("chat.new", "new_chat", "ctrl+n", "New chat",
           "Start a new conversation; the current one stays in the library.", slash=("new", "clear")),
    Action("chat.stop", "stop", "escape", "Stop",
           "Stop the reply being written (what it wrote is kept), or cancel an edit.", palette=False),
    Action("chat.regenerate", "regenerate", "ctrl+r", "Regenerate",
           "Write the last reply again as a new version, or answer a message that has no reply.",
           slash=("regenerate",)),
    Action("chat.edit_last", "edit_last", "ctrl+g", "Edit last message",
           "Put your last message back in the prompt; Enter sends it as a new version.", slash=("edit",),
           footer=False),
    Action("chat.continue", "continue_reply", "ctrl+t", "Continue",
           "Continue the last reply where it stopped or was cut off.", slash=("continue",)),
    Action("chat.copy", "copy_last", "f3", "Copy reply", "Copy the last reply to the clipboard.",
           slash=("copy",), footer=False),
    Action("chat.conversations", "conversations", "ctrl+o", "Conversations",
           "Browse, search, open, rename and delete saved conversations.", slash=("chats",)),
    Action("chat.save_file", "save_file", "ctrl+s", "Save to file",
           "Save this conversation as Markdown (.md) or JSON (.json).", slash=("save",), argument="[FILE]",
           footer=False),
    Action("chat.save_tf_chat", "save_tf_chat", None, "Save as transformers chat JSON",
           "Save this conversation as the JSON `transformers chat` writes with !save (to FILE, or to "
           "chat_history/MODEL/chat_DATE.json as it does).", slash=("save-tf-chat",), argument="[FILE]"),
    Action("chat.open_file", "open_file", None, "Open file",
           "Import a conversation file (chatui JSON or Markdown, transformers chat JSON, an OpenAI-style "
           "list) and open it.", slash=("open",), argument="[FILE]"),
    Action("chat.models", "pick_model", "ctrl+l", "Models",
           "Pick a model: every model in the Hugging Face cache, used before, in config.toml or on the "
           "server, with its size, what it needs here and the speed this machine allows; type to filter, "
           "Enter loads; a Hub id not in the cache offers its download.", slash=("model", "models"),
           argument="[NAME]", footer=False),
    Action("chat.load_saved_model", "load_saved_model", "f12", "Load this chat's model",
           "Load the model, options and LoRA adapters the open conversation was made with (offered when "
           "they differ from the ones in use now; opening a chat never reloads on its own)."),
    Action("chat.token_probs", "toggle_token_probs", "f4", "Token probabilities",
           "Record each token's probability and the 10 most likely tokens, before and after the sampling "
           "filters, for the next replies (on/off; a little slower while on).", slash=("probs",), footer=False),
    Action("chat.token_view", "token_view", "f5", "Token view",
           "The focused or last reply as tokens coloured by probability, with the alternatives of each; "
           "pick one to write the reply again from there.", slash=("tokens",), footer=False),
    Action("chat.compare", "compare", None, "Compare settings",
           "Answer the last prompt again under 2-4 settings side by side (current, a preset, or "
           "key=value,...; by default current and the built-in presets), with the same seed; keep one.",
           slash=("compare",), argument="[SETTINGS ...]"),
    Action("chat.attach", "attach", None, "Attach a file",
           "Attach an image or a document (text, Markdown, code, CSV, JSON, PDF) to your next message; a path "
           "may start with ~ or be relative to where chatui started; without one, a file picker opens in the "
           "last folder used. Repeat for more.", slash=("attach",),
           argument="[PATH]"),
    Action("chat.detach", "detach", None, "Remove an attachment",
           "Remove attachment N (counting from 1) from your next message, or the last one.", slash=("detach",),
           argument="[N]"),
    Action("chat.view_image", "view_image", "f9", "View image",
           "Show the focused message's image (or the chat's last one) full size.", slash=("image",),
           footer=False),
    Action("chat.tools", "tools", None, "Tools",
           "The configured MCP servers (config.toml [mcp]), each with its state and its tools; `/tools off "
           "[NAME ...]` and `/tools on [NAME ...]` switch tools off and on for this chat.", slash=("tools",),
           argument="[on|off NAME ...]"),
    Action("chat.adapter", "adapter", None, "LoRA adapters",
           "LoRA adapters on the model, live: `load PATH [NAME]` (a folder or Hub id), `use NAME` (`none`: "
           "the base model; `a=0.5,b=0.5`: a weighted mix), `unload NAME`, `merge` (full speed; switching "
           "then needs a reload). Takes effect at the next reply.", slash=("adapter",),
           argument="load PATH [NAME] | use NAME|none | unload NAME | merge"),
    Action("app.sidebar", "toggle_sidebar", "ctrl+b", "Sidebar", "Show or hide the settings sidebar."),
    Action("chat.set", "set", None, "Set generation settings",
           "Change generation settings for the next replies, e.g. /set temperature=0.5 max_new_tokens=256.",
           slash=("set",), argument="key=value ...", palette=False),
    Action("chat.system", "system", None, "System prompt",
           "Set the system prompt for the next replies (empty clears it).", slash=("system",), argument="TEXT",
           palette=False),
    Action("chat.branch", "branch_chat", None, "Branch to a new chat",
           "Copy the conversation down to the focused message (or all of it) into a new chat, to go on "
           "another way; the original stays as it is.", slash=("branch", "fork")),
    Action("chat.open_origin", "open_origin", None, "Open the chat this branch came from",
           "A chat made by branching: open the one it was copied from, at the message it was copied "
           "down to.", slash=("origin",)),
    Action("chat.status", "show_status", None, "Status",
           "Show the model, its load options and the generation settings in use.", slash=("status",)),
    Action("app.help", "help", "f1", "Help", "Every key and slash command.", scope="app", slash=("help",)),
    Action("app.theme", "change_theme", None, "Change theme", "Pick a colour theme (previewed as you move).",
           scope="app", slash=("theme",)),
    Action("app.save_defaults", "save_defaults", None, "Save as defaults",
           "Write the current model and generation settings, system prompt and theme to config.toml.",
           scope="app"),
    Action("app.screenshot", "screenshot", None, "Screenshot", "Save an SVG picture of the screen.",
           scope="app"),
    Action("app.quit", "quit", "ctrl+q", "Quit", "Quit chatui; the conversation is saved.", scope="app",
           slash=("quit", "exit"), priority=True),
    # On a focused message: keys that cannot be mistaken for typing (typed text goes to the prompt).
    Action("message.copy", "act('copy')", "ctrl+c", "Copy", "Copy this message (or the text selected in it).",
           scope="message"),
    Action("message.edit", "act('edit')", "ctrl+e", "Edit", "Edit your message; Enter sends it as a new version.",
           scope="message"),
    Action("message.regenerate", "act('regenerate')", "ctrl+r", "Regenerate",
           "Write this reply again (or answer this message, if it has no reply).", scope="message"),
    Action("message.delete", "act('delete')", "delete", "Delete", "Delete this message and the ones after it.",
           scope="message"),
    Action("message.branch", "act('branch')", "ctrl+f", "Branch",
           "Copy the conversation down to this message into a new chat.", scope="message"),
    Action("message.previous_version", "act('previous_version')", "left", "Previous version",
           "Show the previous version of this message.", scope="message"),
    Action("message.next_version", "act('next_version')", "right", "Next version",
           "Show the next version of this message.", scope="message"),
    # In the conversations browser.
    Action("browser.open", "open", "enter", "Open", "Open the highlighted conversation.", scope="browser",
           footer=False),
    Action("browser.rename", "rename", "f2", "Rename", "Rename the highlighted conversation.", scope="browser"),
    Action("browser.delete", "delete", "f8", "Delete", "Delete the highlighted conversation.", scope="browser"),
    Action("browser.new", "new", "ctrl+n", "New chat", "Start a new conversation.", scope="browser"),
    Action("browser.close", "close", "escape", "Close", "Close the browser.", scope="browser"),
    Action("browser.focus_list", "focus_list", "down", "List", "Move from the search to the list.", scope="browser",
           footer=False),
    # In the prompt: before the text area's own keys (priority), which would insert a newline on Enter.
    Action("prompt.send", "send", "enter", "Send the message", "Send the message.", scope="prompt", footer=False,
           priority=True),
    Action("prompt.new_line", "new_line", "shift+enter,ctrl+j", "New line in the message",
           "Insert a newline in the message.", scope="prompt", footer=False, priority=True),
    Action("message.previous_message", "move(-1)", "up", "Previous message", "Focus the message above.",
           scope="message", footer=False),
    Action("message.next_message", "move(1)", "down", "Next message", "Focus the message below.",
           scope="message", footer=False),
    # The model picker and its download.
    Action("models.pick", "pick", "enter", "Load", "Load the highlighted model (or download it first).",
           scope="models", footer=False),
    Action("models.delete", "delete", "f8", "Delete from cache",
           "Delete the highlighted model from the Hugging Face cache (asks first, with its size).", scope="models"),
    Action("models.close", "close", "escape", "Close", "Close the picker.", scope="models"),
    Action("models.focus_list", "focus_list", "down", "List", "Move from the filter to the list.", scope="models",
           footer=False),
    Action("download.start", "start", "enter", "Download", "Download the files listed.", scope="download"),
    Action("download.cancel", "cancel", "escape", "Cancel",
           "Stop the download (what came is kept: the next download resumes) or close.", scope="download"),
    # The token view.
    Action("token_view.close", "dismiss(None)", "escape,q", "Close", "Close the token view.", scope="token_view"),
    Action("token_view.previous_token", "move(-1)", "left", "Previous token", "Move to the previous token.",
           scope="token_view", footer=False),
    Action("token_view.next_token", "move(1)", "right", "Next token", "Move to the next token.",
           scope="token_view", footer=False),
    Action("token_view.back_10", "move(-10)", "pageup", "10 tokens back", "Move 10 tokens back.",
           scope="token_view", footer=False),
    Action("token_view.forward_10", "move(10)", "pagedown", "10 tokens on", "Move 10 tokens on.",
           scope="token_view", footer=False),
    Action("token_view.first_token", "move(-1000000)", "home", "First token", "Move to the first token.",
           scope="token_view", footer=False),
    Action("token_view.last_token", "move(1000000)", "end", "Last token", "Move to the last token.",
           scope="token_view", footer=False),
    Action("token_view.colours", "toggle_colours", "c", "Colours", "Turn the probability colours off and on.",
           scope="token_view"),
    *(Action(f"token_view.alternative_{n}", f"branch({n - 1})", str(n % 10), f"Alternative {n}",
             f"Write the reply again from the token under the cursor, as its alternative {n}.",
             scope="token_view", footer=False) for n in range(1, 11)),
    # Compare settings: one key per column (tui.ui.screens.compare.MAX_COLUMNS).
    Action("compare.close", "close", "escape,q", "Close", "Close the comparison.", scope="compare"),
    *(Action(f"compare.keep_{n}", f"keep({n - 1})", str(n), f"Keep reply {n}",
             f"Keep column {n}'s reply as a new version of the last reply.", scope="compare", footer=False)
      for n in range(1, 5)),
    # The card a tool call waits on.
    Action("tool_approval.run_once", "answer('once')", "o", "Run once", "Run this tool call.",
           scope="tool_approval"),
    Action("tool_approval.always", "answer('always')", "a", "Always",
           "Run this call, and this tool from now on in this chat.", scope="tool_approval"),
    Action("tool_approval.deny", "answer('deny')", "d,escape", "Deny",
           "Do not run it; say why (the model is told).", scope="tool_approval"),
    # Small dialogs, help and the tools list.
    Action("confirm.yes", "answer(True)", "y", "Yes", "Answer yes.", scope="confirm"),
    Action("confirm.no", "answer(False)", "n,escape", "No", "Answer no.", scope="confirm"),
    Action("text_prompt.cancel", "cancel", "escape", "Cancel", "Close without an answer.", scope="text_prompt"),
    Action("help.close", "dismiss", "escape,q", "Close", "Close the help.", scope="help"),
    Action("image_viewer.close", "close", "escape,q", "Close", "Close the image.", scope="image_viewer"),
    Action("image_viewer.previous", "step(-1)", "left", "Previous image",
           "The message's (or chat's) image before this one.", scope="image_viewer"),
    Action("image_viewer.next", "step(1)", "right", "Next image",
           "The message's (or chat's) image after this one.", scope="image_viewer"),
    Action("tools.close", "dismiss", "escape,q", "Close", "Close the tools list.", scope="tools"),
)
# fmt: on
BY_ID: dict[str, Action] = {action.id: action for action in ACTIONS}
BY_SLASH: dict[str, Action] = {name: action for action in ACTIONS for name in action.slash}


def bindings(scope: str) -> list[BindingType]:
    """Textual bindings for the actions of `scope` that have a key (ids let the keymap rebind them)."""
    return [
        Binding(a.key, a.action, a.title, show=a.footer, id=a.id, priority=a.priority)
        for a in ACTIONS
        if a.scope == scope and a.key
    ]


def in_scope(*scopes: str) -> Iterable[Action]:
    return (a for a in ACTIONS if a.scope in scopes)


_ARROWS = {"left": "←", "right": "→", "up": "↑", "down": "↓"}


class Keymap:
    """The keys in use: the table's defaults with the user's `[keys]` on top."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self.errors: list[str] = []
        self.overrides: dict[str, str] = {}
        for binding_id, key in (overrides or {}).items():
            if binding_id == "chat.clear":
                self.errors.append("[keys] chat.clear is now part of chat.new (new chat); bind that instead")
            elif binding_id not in BY_ID:
                self.errors.append(f"[keys] unknown binding id {binding_id!r} (known: {', '.join(BY_ID)})")
            elif not isinstance(key, str) or not key.strip():
                self.errors.append(f'[keys] {binding_id} must be a key such as "ctrl+x"')
            else:
                self.overrides[binding_id] = key.replace(" ", "")

    @classmethod
    def of(cls, app: object) -> Keymap:
        """The keymap of `app` (chatui's app has one), else the table's defaults."""
        keymap = getattr(app, "keymap", None)
        return keymap if isinstance(keymap, Keymap) else cls()

    def keys(self, action_id: str) -> str | None:
        """The key(s) bound to an action now, comma-separated, or None."""
        return self.overrides.get(action_id, BY_ID[action_id].key)

    def key(self, action_id: str) -> str:
        """The key to name in text (the first one bound), or "" when the action has none."""
        keys = self.keys(action_id)
        return _ARROWS.get(key := keys.split(",")[0], key) if keys else ""

    def span(self, action_ids: Iterable[str]) -> str:
        """The keys of a row of actions named in text: "1-4" when they are digits in order, else "1/2/x/4"."""
        keys = [self.key(action_id) for action_id in action_ids]
        if all(len(key) == 1 and key.isdigit() for key in keys) and [int(key) for key in keys] == list(
            range(int(keys[0]), int(keys[0]) + len(keys))
        ):
            return f"{keys[0]}-{keys[-1]}"
        return "/".join(keys)

    def shown(self, action_id: str) -> str:
        """Every key bound to an action, for help: "ctrl+n" or "ctrl+n / ctrl+l"."""
        keys = self.keys(action_id)
        return " / ".join(keys.split(",")) if keys else ""
