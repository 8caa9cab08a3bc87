"""The engine: the backends that load models and write replies, with their settings and
metrics. It knows nothing of Textual.

Every backend keeps the contract in `backend.py` (`Backend`: load → Future[ModelInfo], generate →
Turn of Started / TokenDelta / TokenProbs / Finished / Failed events, prefill, count_tokens,
parse_response, decode, close, and its `Capabilities`): the in-process `Engine` (session.py), a
`RemoteBackend` (remote.py), and `Backends` (backends.py), which hands each call to the one in use.
Importing this package does not import torch or transformers.
"""

from tui.engine.errors import LoadError
from tui.engine.events import Alternative, Failed, Finished, Started, TokenChoice, TokenDelta, TokenProbs
from tui.engine.loading import ModelInfo
from tui.engine.metrics import TurnMetrics
from tui.engine.session import Engine
from tui.engine.settings import (
    PARAM_SPECS,
    GenerationSettings,
    LoadSettings,
    SettingsError,
    parse_key_values,
)
from tui.engine.turn import Turn

__all__ = [
    "Engine",
    "Turn",
    "Started",
    "TokenDelta",
    "TokenProbs",
    "TokenChoice",
    "Alternative",
    "Finished",
    "Failed",
    "LoadError",
    "ModelInfo",
    "TurnMetrics",
    "PARAM_SPECS",
    "GenerationSettings",
    "LoadSettings",
    "SettingsError",
    "parse_key_values",
]
