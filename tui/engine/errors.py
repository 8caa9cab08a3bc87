"""The engine's errors: each str() is one clear line for the user."""


class LoadError(Exception):
    """The model could not be loaded; str() is one clear line for the user."""


class AdapterError(Exception):
    """An adapter could not be loaded, switched or merged; str() is one clear line for the user.
    The model and its adapters are as they were before."""
