"""Static KV cache + torch.compile (`--compile`, off by default), compiled right after a load.

transformers compiles a model's forward for decode steps when generate() runs with a static
cache (`StaticCache`) and a compile config; the first such call compiles (about a minute for
SmolLM2 on a 2-core CPU). The engine runs `CompileJob.run` on its one torch thread as the job
after the load, so the model is never used by two threads at once; a reply sent meanwhile waits
for it. Once it is compiled, replies that fit the static cache use it.

Why it is off by default: measured here (benchmarks/bench_speed.py) it decodes at 0.73-1.16x
plain `generate` on CPU, at the 1.7B shape 0.85x in bf16 and 0.72x in int4 (bench_sizes.py: each
token reads the whole 2048-token static cache), and a static cache cannot be cropped, so the KV
reuse across turns is lost on this path. On a GPU it is the usual way to cut per-token overhead. Any failure (no C
compiler, a model dynamo cannot trace) leaves the usual path in place and is reported once.
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from typing import Any

from tui.engine.sources import one_line
from tui.paths import cache_dir

STATIC_CACHE_TOKENS = 2048  # room in the static cache: prompt + reply (a reply that needs more uses the usual path)


def keep_compiled_code() -> None:
    """Inductor's compiled code goes to chatui's cache, not to /tmp (which a reboot empties), so the
    next start of the same model, dtype and quantization compiles in seconds. A folder the user set
    in TORCHINDUCTOR_CACHE_DIR wins (inductor writes its default there itself once imported)."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if current is None or os.path.abspath(current) == os.path.abspath(default_cache_dir()):
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir() / "inductor")


class CompileJob:
    """Compiles `model` for static-cache decoding when `run()` is called (on the torch thread);
    `state` is compiling / ready / failed and `done` resolves with it."""

    def __init__(self, model: Any, context_size: int) -> None:
        self.model = model
        self.max_cache_len = min(context_size or STATIC_CACHE_TOKENS, STATIC_CACHE_TOKENS)
        self.state = "compiling"
        self.error = ""
        self.done: Future[str] = Future()
        self._compile_config: Any = None
        self._cache: Any = None

    def _new_cache(self) -> Any:
        from transformers import StaticCache

        return StaticCache(config=self.model.config, max_cache_len=self.max_cache_len)

    def run(self) -> None:
        keep_compiled_code()
        try:
            import torch
            from transformers.generation.configuration_utils import CompileConfig

            config = CompileConfig(fullgraph=False, mode="default")
            # transformers compiles only on GPUs unless told (it declares the flag `= None`, hence the ignore)
            config._compile_all_devices = True  # type: ignore[assignment]
            model = self.model
            # Two throwaway replies of different lengths: dynamo compiles for the first shapes it
            # sees, then again with dynamic ones; a user's first reply must not be that second time.
            for prompt_length in (8, 29):
                ids = torch.tensor([[model.config.bos_token_id or 0] * prompt_length], device=model.device)
                with torch.inference_mode():  # decode steps are what gets compiled: make a few
                    model.generate(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        max_new_tokens=6,
                        min_new_tokens=6,
                        do_sample=False,
                        cache=self._new_cache(),
                        compile_config=config,
                        pad_token_id=model.config.eos_token_id or 0,
                    )
            self._compile_config = config
            self.state = "ready"
        except Exception as exc:  # anything: the usual path stays
            self.state = "failed"
            self.error = f"torch.compile failed, replies use the usual path: {type(exc).__name__}: {one_line(exc)}"
        finally:
            self.done.set_result(self.state)

    def cancel(self) -> None:
        """The model was unloaded before the job ran."""
        if not self.done.done():
            self.state = "failed"
            self.error = "the model was unloaded before it was compiled"
            self.done.set_result(self.state)

    def generate_kwargs(self, prompt_tokens: int, max_new_tokens: int) -> dict[str, Any] | None:
        """The static cache and compile config for a reply, or None (not compiled, failed, or the
        reply may not fit the static cache). Runs on the torch thread."""
        if self.state != "ready" or prompt_tokens + max_new_tokens > self.max_cache_len:
            return None
        import torch

        with torch.inference_mode():  # as in the warm-up: other tensor flags would make dynamo recompile
            if self._cache is None:
                self._cache = self._new_cache()
            else:
                self._cache.reset()
        return {"cache": self._cache, "compile_config": self._compile_config}
