"""The adapters on the in-process model, live: load, switch (one, a weighted mix, or none),
unload and merge, each a job on the engine's torch thread, through transformers'
`PeftAdapterMixin` (`load_adapter`, `set_adapter`, `enable_adapters`/`disable_adapters`,
`delete_adapter`) on top of peft.

The base model stays loaded: loading an adapter reads its file and wraps the layers it adapts.
A mix of several adapters is peft's multi-adapter inference: each active adapter's update is
added, scaled by its weight (`LoraLayer.set_scale`): the exact weighted sum of their updates,
which peft's `add_weighted_adapter(combination_type="cat")` builds as a new adapter, without
building one, for adapters of any ranks.

The KV cache kept across turns (turn_cache.py) was computed with the weights in use; it is
dropped whenever they change (another adapter or mix, one merged) and kept otherwise (loading an
adapter without using it, unloading one not in use).

Layers packed for oneDNN (packed_linear.py) and chatui's int4 layers are wrapped as they are
(custom_lora.py); merging unpacks the adapted packed layers first, and they are packed again when
the last adapter goes or is merged. Checks before anything changes: adapters.py.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from tui.engine import custom_lora
from tui.engine.adapters import (
    NONE,
    AdapterInfo,
    AdapterState,
    check_fits,
    check_name,
    default_name,
    read_adapter,
    resolve_adapter,
)
from tui.engine.errors import AdapterError
from tui.engine.jobs import submit
from tui.engine.loading import LoadedModel
from tui.engine.packed_linear import can_pack, pack_linear_layers, unpack
from tui.engine.sources import one_line
from tui.engine.turn_cache import TurnCache

log = logging.getLogger(__name__)
Mix = tuple[tuple[str, float], ...]


class LocalAdapters:
    """The adapters of the engine's loaded model; each call returns a Future at once."""

    def __init__(self, executor: Executor, loaded: Callable[[], LoadedModel | None], cache: TurnCache) -> None:
        self._executor = executor
        self._loaded = loaded
        self._cache = cache

    @property
    def state(self) -> AdapterState:
        loaded = self._loaded()
        return loaded.adapters if loaded is not None else AdapterState()

    def load(self, path: str, name: str | None = None, activate: bool = True) -> Future[AdapterInfo]:
        """Load the adapter at `path` (a folder or Hub id) as `name` (default: its folder's name)
        and, with `activate`, use it alone from the next reply on."""
        return self._submit(self._load_job, path, name, activate)

    def use(self, mix: Mapping[str, float] | None) -> Future[AdapterState]:
        """Use these adapters with these weights from the next reply on; None or {} is the base model."""
        return self._submit(self._use_job, tuple((mix or {}).items()))

    def unload(self, name: str) -> Future[AdapterState]:
        """Remove adapter `name`; if it was in use, the rest of the mix (or the base model) is used."""
        return self._submit(self._unload_job, name)

    def merge(self) -> Future[AdapterState]:
        """Merge the adapters in use into the weights (full speed); the others are removed, and
        switching again needs a reload."""
        return self._submit(self._merge_job)

    def _submit(self, job: Callable[..., Any], *args: Any) -> Future[Any]:
        return submit(self._executor, job, *args, when_closed=AdapterError("the engine is shut down"))

    # -- jobs, on the torch thread ------------------------------------------------------------

    def _model(self) -> LoadedModel:
        loaded = self._loaded()
        if loaded is None:
            raise AdapterError("no model is loaded")
        if loaded.adapters.merged:
            merged = "+".join(adapter.name for adapter in loaded.adapters.merged)
            raise AdapterError(f"adapter {merged} is merged into the weights: reload the model to switch adapters")
        if loaded.settings.compile:
            raise AdapterError("adapters cannot be applied to a compiled model (--compile): load it without compiling")
        return loaded

    def _load_job(self, path: str, name: str | None, activate: bool) -> AdapterInfo:
        started = time.perf_counter()
        loaded = self._model()
        state = loaded.adapters
        name = name or default_name(path)
        check_name(name, state.names)
        settings = loaded.settings
        folder = resolve_adapter(path)
        spec = read_adapter(folder, path, settings.trust_remote_code, settings.allow_pickle)
        if Path(path).expanduser().is_dir():
            path = str(folder)  # recorded with each reply: reopening the chat elsewhere finds it
        model = loaded.model
        check_fits(spec, model, path, loaded.info.name)
        try:
            with warnings.catch_warnings(), _no_progress_bar():  # nothing on the terminal under the app
                # peft warns that a second adapter joins the first: that is the point
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                warnings.filterwarnings("ignore", message="TorchaoLoraLinear was instantiated")  # see _merge_job
                report = model.load_adapter(
                    str(spec.folder),
                    adapter_name=name,
                    use_safetensors=spec.weights_file.suffix == ".safetensors",
                    peft_config=custom_lora.peft_config(spec.folder, model),  # None: peft reads the folder's
                )
            missing = sorted(getattr(report, "missing_keys", ()) or ())
            if missing:
                raise AdapterError(f"adapter {name} lacks weights the model expects, e.g. {missing[0]}")
        except Exception as exc:
            self._remove(loaded, name)
            self._apply(loaded, state.active)
            if isinstance(exc, AdapterError):
                raise
            if settings.quantization != "none":
                raise AdapterError(
                    f"peft cannot apply adapter {name} to {settings.quantization} layers ({one_line(exc)}): load "
                    "the model unquantized (--quantization none), or merge the adapter into a bf16 copy "
                    "(--quantization none --dtype bfloat16 --merge-adapter)"
                ) from exc
            raise AdapterError(f"cannot apply adapter {name}: {one_line(exc)}") from exc
        info = AdapterInfo(
            name=name,
            path=path,
            folder=str(spec.folder),
            sha256=spec.sha256,
            peft_type=spec.peft_type,
            rank=spec.rank,
            base_model=spec.base_model,
            warnings=tuple(spec.warnings),
            load_seconds=time.perf_counter() - started,
        )
        loaded.adapters = AdapterState(state.loaded + (info,), state.active, state.merged)
        try:
            self._switch(loaded, ((name, 1.0),) if activate else state.active)
        except AdapterError:
            self._remove(loaded, name)
            loaded.adapters = state
            self._apply(loaded, state.active)
            raise
        for warning in info.warnings:
            log.warning("%s", warning)
        return info

    def _use_job(self, mix: Mix) -> AdapterState:
        loaded = self._model()
        known = loaded.adapters.names
        for name, weight in mix:
            if name not in known:
                loaded_text = ", ".join(known) or "none"
                raise AdapterError(f"no adapter named {name} is loaded (loaded: {loaded_text})")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not -10 <= weight <= 10:
                raise AdapterError(f"adapter {name}: weight {weight!r} is not a number from -10 to 10")
        self._switch(loaded, tuple((name, float(weight)) for name, weight in mix if weight != 0))
        return loaded.adapters

    def _unload_job(self, name: str) -> AdapterState:
        loaded = self._model()
        state = loaded.adapters
        if name not in state.names:
            raise AdapterError(f"no adapter named {name} is loaded (loaded: {', '.join(state.names) or 'none'})")
        mix = tuple(item for item in state.active if item[0] != name)
        self._remove(loaded, name)
        loaded.adapters = AdapterState(tuple(i for i in state.loaded if i.name != name), state.active, state.merged)
        self._switch(loaded, mix)
        return loaded.adapters

    def _merge_job(self) -> AdapterState:
        loaded = self._model()
        state = loaded.adapters
        if not state.active:
            raise AdapterError("no adapter is in use to merge: choose one first")
        if loaded.settings.quantization == "int4":  # peft cannot merge into packed int4 weights
            raise AdapterError(
                f"{state.label()} cannot be merged into int4 weights; it works unmerged here. For full "
                "speed merge it into a bf16 copy: --quantization none --dtype bfloat16 --merge-adapter"
            )
        from peft.tuners.tuners_utils import BaseTunerLayer

        names = [name for name, _ in state.active]
        model = loaded.model
        for path, module in list(model.named_modules()):  # a packed base layer takes no update: plain again
            if isinstance(module, BaseTunerLayer):
                unpack(model, f"{path}.base_layer")
        try:
            for module in loaded.model.modules():
                if isinstance(module, BaseTunerLayer):
                    module.merge(adapter_names=[n for n in names if n in getattr(module, "scaling", {})])
        except Exception as exc:  # e.g. a quantized layer peft cannot merge into
            raise AdapterError(f"cannot merge {state.label()}: {one_line(exc)}") from exc
        merged = tuple(replace(adapter, merged=True) for adapter in state.applied())
        self._strip(loaded)
        loaded.adapters = AdapterState(merged=merged)
        self._cache.drop()
        return loaded.adapters

    # -- the model's layers ---------------------------------------------------------------------

    def _switch(self, loaded: LoadedModel, mix: Mix) -> None:
        """Use `mix`; the KV cache goes when the weights in use change. Should peft refuse it, the
        mix before stays in use and AdapterError says why."""
        before = loaded.adapters.active
        try:
            self._apply(loaded, mix)
        except Exception as exc:
            self._cache.drop()  # whatever peft changed before it refused
            self._apply(loaded, before)
            label = "+".join(name for name, _ in mix)
            raise AdapterError(f"peft cannot use {label}: {one_line(exc)}") from exc
        loaded.adapters = loaded.adapters.with_active(mix)
        if mix != before:
            self._cache.drop()

    def _apply(self, loaded: LoadedModel, mix: Mix) -> None:
        model = loaded.model
        if not getattr(model, "_hf_peft_config_loaded", False):
            return
        if not mix:
            model.disable_adapters()
            return
        from peft.tuners.lora import LoraLayer

        model.enable_adapters()
        model.set_adapter([name for name, _ in mix])
        for module in model.modules():
            if isinstance(module, LoraLayer):
                for name, weight in mix:
                    module.set_scale(name, weight)

    def _remove(self, loaded: LoadedModel, name: str) -> None:
        """Delete adapter `name` from the model (if it got that far); with none left, the model's
        layers are as they were loaded."""
        model = loaded.model
        if name in (getattr(model, "peft_config", None) or {}):
            with warnings.catch_warnings():  # peft says which adapter it makes active: _switch sets the mix
                warnings.filterwarnings("ignore", message="Adapter .* was active which is now deleted")
                model.delete_adapter(name)
        if not getattr(model, "_hf_peft_config_loaded", False):
            self._strip(loaded)

    def _strip(self, loaded: LoadedModel) -> None:
        """Every peft wrapper replaced by the layer it wraps (merged weights stay), and the layers
        packed again where the load packed them."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        model = loaded.model
        for path, module in list(model.named_modules()):
            if isinstance(module, BaseTunerLayer) and path:
                parent, _, child = path.rpartition(".")
                setattr(model.get_submodule(parent) if parent else model, child, module.get_base_layer())
        if hasattr(model, "peft_config"):
            del model.peft_config
        model._hf_peft_config_loaded = False
        settings, info = loaded.settings, loaded.info
        if settings.quantization == "none" and not settings.compile and can_pack(info.device, info.dtype):
            pack_linear_layers(model)


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """transformers' "Loading weights" bar, off while an adapter loads (it is read in a second)."""
    from transformers.utils import logging as transformers_logging

    enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            transformers_logging.enable_progress_bar()


def parse_mix(text: str) -> dict[str, float]:
    """`a`, `a=0.7,b=0.3` or `none` → {name: weight} ({} for none); AdapterError says what is wrong."""
    text = text.strip()
    if not text or text.lower() == NONE:
        return {}
    mix: dict[str, float] = {}
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        name, sep, raw = part.partition("=")
        try:
            weight = float(raw) if sep else 1.0
        except ValueError:
            raise AdapterError(f"adapter {name}: weight {raw!r} is not a number") from None
        mix[name.strip()] = weight
    return mix
