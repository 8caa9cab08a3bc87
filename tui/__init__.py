"""chatui: a full-screen terminal app for chatting with local transformers models."""

__version__ = "0.1.0"
