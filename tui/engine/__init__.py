"""The engine: loading, generation and metrics. It knows nothing of Textual.

API: `Engine.load(LoadSettings) -> Future[ModelInfo]`, `Engine.generate(messages,
GenerationSettings) -> Turn` (iterate for TokenDelta / Finished / Failed; `Turn.stop()`).
Importing this package does not import torch or transformers.
"""

from tui.engine.events import Failed, Finished, Started, TokenDelta
from tui.engine.loading import LoadError, ModelInfo
from tui.engine.metrics import TurnMetrics
from tui.engine.session import Engine, Turn
from tui.engine.settings import (
    PARAM_SPECS,
    GenerationSettings,
    LoadSettings,
    SettingsError,
    parse_key_values,
)

__all__ = [
    "Engine", "Turn", "Started", "TokenDelta", "Finished", "Failed", "LoadError", "ModelInfo", "TurnMetrics",
    "PARAM_SPECS", "GenerationSettings", "LoadSettings", "SettingsError", "parse_key_values",
]
