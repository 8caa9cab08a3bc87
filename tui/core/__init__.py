"""The Textual-free core the app and headless mode share: the options of a run, the chat
session (conversation, settings, the reply in flight) and the tool loop."""
