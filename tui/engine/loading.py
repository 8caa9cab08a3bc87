"""Loading a model with the chosen dtype, device, quantization and attention implementation.

Every failure becomes a LoadError with one line a user can act on. Runs on the engine's torch
thread; imports torch and transformers lazily so the UI's first frame never waits for them.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui.engine import int4_cache
from tui.engine.adapters import AdapterState
from tui.engine.errors import LoadError
from tui.engine.hardware import pick_device, pick_dtype, unavailable_options
from tui.engine.packed_linear import can_pack, pack_linear_layers
from tui.engine.quantization import (
    INT4_GROUP_SIZE,
    bytes_per_parameter,
    bytes_read_per_token,
    check_quantization,
    int4_backend,
    packed_format,
    quantize_int4,
    transformers_config,
    weight_bytes,
)
from tui.engine.settings import LoadSettings
from tui.engine.sources import (
    ModelSource,
    ModelSourceError,
    check_hub_cached,
    converted_gguf_dir,
    one_line,
    resolve_source,
)
from tui.engine.vision import is_vision_config
from tui.logs import quiet_transformers

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]

# Stages of a load, each a share of the progress bar (weights loading gets the live sub-steps).
_STEPS = 100


@dataclass
class ModelInfo:
    name: str
    source: str  # repo id or path
    device: str
    dtype: str
    quantization: str
    attn_implementation: str
    context_size: int
    parameters: int
    footprint_bytes: int
    has_chat_template: bool
    load_seconds: float
    warnings: list[str] = field(default_factory=list)
    draft: str | None = None  # the draft model for assisted decoding, when one is loaded
    # "kind:value" → why that load option cannot work here (shown, disabled, in the sidebar)
    unavailable: dict[str, str] = field(default_factory=dict)
    available_models: list[str] = field(default_factory=list)  # a server's models (remote only)
    # a server's LoRA adapters among them (vLLM lists each as a model with its base as `parent`): name → base
    served_adapters: dict[str, str] = field(default_factory=dict)
    bytes_per_token: int = 0  # weights one decoded token reads (engine/estimates.py); 0 when unknown

    @property
    def remote(self) -> bool:
        return self.device == "remote"


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    info: ModelInfo
    settings: LoadSettings
    processor: Any = None  # a vision model's processor (its tokenizer is `tokenizer`)
    adapters: AdapterState = field(default_factory=AdapterState)  # adapter_control.py keeps it


class _WeightsProgress:
    """A tqdm stand-in that forwards transformers' "Loading weights" bar to our callback."""

    def __init__(self, progress: Progress, start: int, span: int, label: str, iterable=None, total=None, **_: Any):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.n = 0
        self._progress, self._start, self._span, self._label = progress, start, span, label

    def _report(self) -> None:
        if self.total:
            done = min(self.n, self.total)
            label = f"{self._label} ({done}/{self.total})"
            self._progress(self._start + int(self._span * done / self.total), _STEPS, label)

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.n += 1
            if self.n % 16 == 0 or self.n == self.total:
                self._report()

    def update(self, n: int = 1) -> None:
        self.n += n or 1
        self._report()

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        pass

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        pass


@contextmanager
def _gguf_tensor_progress(report: Progress) -> Iterator[None]:
    """transformers reads a GGUF's tensors under a tqdm of its own (`tqdm.auto`, not its logging
    hook): it would print to the terminal, and the load's progress would stall on it. While a GGUF
    converts, that bar is ours: the tensors read of the total, as the load's progress."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    previous = gguf_utils.tqdm
    gguf_utils.tqdm = lambda iterable=None, *args, **kwargs: _WeightsProgress(
        report, 12, 18, "converting GGUF: tensors", iterable, *args, **kwargs
    )
    try:
        yield
    finally:
        gguf_utils.tqdm = previous


def _explain(exc: BaseException, source: ModelSource, settings: LoadSettings) -> str:
    text = str(exc)
    lowered = text.lower()
    if "trust_remote_code" in lowered or "custom code" in lowered:
        return f"{source.name} contains custom code; run it only if you trust it, with --trust-remote-code"
    if isinstance(exc, MemoryError) or "out of memory" in lowered or "outofmemory" in type(exc).__name__.lower():
        return f"out of memory while loading {source.name} ({settings.dtype}, {settings.quantization}): {one_line(exc)}"
    if (
        not settings.allow_pickle
        and "safetensors" in lowered
        and any(hint in lowered for hint in ("no file named", "use_safetensors", ".bin"))
    ):
        return (
            f"{source.name} has only pickle (.bin) weights; pickle can run code, so pass --allow-pickle "
            "only if you trust the source"
        )
    if "does not recognize this architecture" in lowered or "model_type" in lowered:
        return f"transformers cannot load {source.name}: {one_line(exc)}"
    return f"cannot load {source.name}: {one_line(exc)}"


def check_memory(config: Any, settings: LoadSettings, dtype: str, device: str, trust: bool, auto_class: Any) -> int:
    """Estimate the weights' size from the config on the meta device; refuse a load that cannot fit."""
    import psutil
    import torch
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=True):  # buffers too: nothing is allocated
        empty = auto_class.from_config(config, trust_remote_code=trust)
    params = sum(p.numel() for p in empty.parameters())
    del empty
    need = int(params * bytes_per_parameter(settings.quantization, dtype))
    if device == "cuda":
        free, _total = torch.cuda.mem_get_info()
        where = "free GPU memory"
    else:
        free = psutil.virtual_memory().available
        where = "available RAM"
    if need > free:
        raise LoadError(
            f"out of memory: {config.model_type} needs about {need / 2**30:.1f} GiB for its weights "
            f"({params / 1e9:.1f}B parameters, {dtype}) but only {free / 2**30:.1f} GiB of {where} is left"
        )
    return params


def checkpoint_dtype(config: Any) -> str | None:
    """The dtype a checkpoint's weights are stored in (its config says), or None if it does not say."""
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return str(value).removeprefix("torch.") if value is not None else None


def find_source(model: str | None) -> ModelSource:
    """What `model` names, checked to be there (a Hub id: in the cache or downloadable)."""
    try:
        source = resolve_source(model)
        if source.kind == "hub":
            check_hub_cached(source.location)
    except ModelSourceError as exc:
        raise LoadError(str(exc)) from exc
    return source


def load_model(settings: LoadSettings, progress: Progress | None = None) -> LoadedModel:
    """Load tokenizer and model as `settings` say. Raises LoadError with a one-line reason."""

    def report(done: int, total: int, label: str) -> None:
        if progress is not None:
            try:
                progress(done, total, label)
            except Exception as exc:  # a broken progress display must never break a load
                log.warning("load progress display failed: %s", one_line(exc))

    started = time.perf_counter()
    source = find_source(settings.model)

    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except Exception as exc:  # a broken install must not become a traceback
        raise LoadError(f"cannot import torch/transformers: {one_line(exc)}") from exc
    quiet_transformers()

    device = pick_device(settings.device)
    check_quantization(settings.quantization, device)
    model_path = source.location
    if source.is_gguf:
        previous = hf_logging.set_tqdm_hook(
            lambda factory, args, kwargs: _WeightsProgress(report, 30, 30, "converting GGUF: weights", *args, **kwargs)
        )
        try:
            with _gguf_tensor_progress(report):
                model_path = str(converted_gguf_dir(Path(source.location), report))
        except ModelSourceError as exc:
            raise LoadError(str(exc)) from exc
        except Exception as exc:
            raise LoadError(f"cannot convert GGUF {source.name}: {one_line(exc)}") from exc
        finally:
            hf_logging.set_tqdm_hook(previous)

    trust = settings.trust_remote_code
    report(65, _STEPS, f"loading {source.name}")
    try:
        config = AutoConfig.from_pretrained(model_path, trust_remote_code=trust)  # read once, for both
        dtype = pick_dtype(settings.dtype, device, None if source.is_gguf else checkpoint_dtype(config))
        quant_config = transformers_config(settings.quantization, dtype)
        auto_class: Any = AutoModelForCausalLM
        processor: Any = None
        if is_vision_config(config):  # images in, text out: its processor reads the images
            from transformers import AutoModelForImageTextToText, AutoProcessor

            auto_class = AutoModelForImageTextToText
            processor = AutoProcessor.from_pretrained(model_path, trust_remote_code=trust)
        params = check_memory(config, settings, dtype, device, trust, auto_class)
        tokenizer = (
            processor.tokenizer if processor else AutoTokenizer.from_pretrained(model_path, trust_remote_code=trust)
        )
        kwargs: dict[str, Any] = {
            "dtype": getattr(torch, dtype),
            "trust_remote_code": trust,
            "use_safetensors": None if settings.allow_pickle else True,
        }
        if quant_config is not None:
            kwargs["quantization_config"] = quant_config
            kwargs["device_map"] = {"": device if device != "cpu" else "cpu"}
        if settings.attn_implementation != "auto":
            kwargs["attn_implementation"] = settings.attn_implementation
        previous = hf_logging.set_tqdm_hook(
            lambda factory, args, kwargs: _WeightsProgress(report, 65, 25, f"loading {source.name}", *args, **kwargs)
        )
        try:
            model = auto_class.from_pretrained(model_path, **kwargs)
        finally:
            hf_logging.set_tqdm_hook(previous)
        if quant_config is None:
            model.to(device)
        model.eval()
        parameters = int(model.num_parameters()) or params
        int4_note = ""
        if settings.quantization == "int4":
            int4_note = _quantize_int4_cached(model, model_path, dtype, report)
        elif settings.quantization == "none" and not settings.compile and can_pack(device, dtype):
            pack_linear_layers(model)
    except LoadError:
        raise
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        gc.collect()
        raise LoadError(_explain(exc, source, settings)) from exc

    warnings: list[str] = [int4_note] if int4_note else []
    if device == "cpu" and dtype == "float16":
        warnings.append("float16 on CPU is slow and can be unstable; float32 or bfloat16 is better here")
    context = context_size_of(model, tokenizer)
    has_template = bool(getattr(processor or tokenizer, "chat_template", None))
    if not has_template:
        warnings.append(f"{source.name} has no chat template; using a plain 'User:/Assistant:' format")
    attn = getattr(model.config, "_attn_implementation", None) or settings.attn_implementation
    info = ModelInfo(
        name=source.name,
        source=source.location,
        device=device,
        dtype=dtype,
        quantization=settings.quantization,
        attn_implementation=str(attn),
        context_size=context,
        parameters=parameters,
        footprint_bytes=weight_bytes(model),
        has_chat_template=has_template,
        load_seconds=time.perf_counter() - started,
        warnings=warnings,
        unavailable=unavailable_options(),
        bytes_per_token=bytes_read_per_token(model),
    )
    report(_STEPS, _STEPS, "ready")
    return LoadedModel(model=model, tokenizer=tokenizer, info=info, settings=settings, processor=processor)


def _quantize_int4_cached(model: Any, model_path: str, dtype: str, report: Callable[[int, int, str], None]) -> str:
    """int4 weights from the cache when this checkpoint was quantized before, else quantize (and
    keep the result for the next load). Returns a line for the user when int4 could not use
    chatui's own kernel ("" when it did)."""
    backend, why_not = int4_backend(lambda line: report(90, _STEPS, line))
    kind = packed_format(backend)
    path = int4_cache.cache_file(model_path, dtype, INT4_GROUP_SIZE, kind)
    note = f"int4 runs on torchao's slower kernel: {why_not}" if why_not else ""
    if path is not None:
        report(90, _STEPS, "reading cached int4 weights")
        if int4_cache.load(model, path, kind):
            return note
    names = quantize_int4(
        model, lambda done, total: report(90 + 8 * done // total, _STEPS, "quantizing to int4"), backend
    )
    if path is not None:
        report(98, _STEPS, "caching int4 weights for the next load")
        int4_cache.save(model, names, path, kind)
    return note


def context_size_of(model: Any, tokenizer: Any) -> int:
    config = model.config.get_text_config()
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and 0 < value < 10_000_000:
        return value
    return 2048


def release_freed_memory() -> None:
    """Give the C heap's free pages back to the system. glibc keeps what torch and Python free
    (an old model's weights, the bf16 weights int4 quantized away) for reuse, so RSS stayed at
    the old model's size after a reload: bf16 → int4 of SmolLM2-135M read 910 → 1,001 MB, and
    584 MB once trimmed (measured under load). Elsewhere than glibc there is nothing to do."""
    if not sys.platform.startswith("linux"):
        return
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # musl, or no libc.so.6
        return
    trim(0)


def free_model(loaded: LoadedModel | None) -> None:
    """Drop a model and give its memory back (gc, the C heap's free pages, and the CUDA cache on
    CUDA)."""
    if loaded is None:
        return
    device = loaded.info.device
    loaded.model = None
    loaded.tokenizer = loaded.processor = None
    gc.collect()
    release_freed_memory()
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def load_draft_model(loaded: LoadedModel) -> tuple[LoadedModel | None, bool]:
    """The draft model for assisted decoding, on the main model's device and dtype, and whether it
    shares the main model's tokenizer. If it cannot load, the main model still works: the reason
    is a warning, and replies are not assisted."""
    main = loaded.settings
    try:
        draft = load_model(
            LoadSettings(
                model=main.draft_model,
                dtype=loaded.info.dtype,
                device=loaded.info.device,
                trust_remote_code=main.trust_remote_code,
                allow_pickle=main.allow_pickle,
            )
        )
    except LoadError as exc:
        loaded.info.warnings.append(f"draft model not used: {exc}")
        return None, True
    same_vocab = draft.tokenizer.get_vocab() == loaded.tokenizer.get_vocab()
    loaded.info.draft = draft.info.name
    if not same_vocab:
        loaded.info.warnings.append(
            f"draft model {draft.info.name} has another tokenizer: assisted "
            "decoding translates between them (slower than a shared tokenizer)"
        )
    return draft, same_vocab
