"""The Textual app: the app, its screens and widgets, the action table and keymap, and the bridge
that brings the engine's results to the UI as messages."""
