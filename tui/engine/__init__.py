"""The engine: loading, generation and metrics. It knows nothing of Textual.

API: `Engine.load(LoadSettings) -> Future[ModelInfo]`, `Engine.generate(messages,
GenerationSettings, logprobs=0) -> Turn` (iterate for TokenDelta / TokenProbs / Finished / Failed;
`Turn.stop()`).
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
