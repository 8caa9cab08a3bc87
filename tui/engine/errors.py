"""The engine's errors: each str() is one clear line for the user."""


class LoadError(Exception):
    """The model could not be loaded; str() is one clear line for the user."""
