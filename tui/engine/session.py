"""The engine: one long-lived torch thread that loads models and generates replies.

Thread policy. Every torch call (load, warm-up, generate) runs on this engine's one worker
thread, with torch's default intra-op pool of one OpenMP thread per physical core; consumers
only read plain events from a queue and never touch torch. Measured on the 2-core machine this
was built on (SmolLM2-135M, fp32, decode tok/s):
- a second Python thread that runs torch ops gets a second OpenMP pool, and the two oversubscribe
  the cores: -11% fp32, -55% bf16. Hence one torch thread.
- 2 OpenMP threads: 19-21 tok/s; 1 thread (leaving a core to the UI): 16. Hence all cores.
- OMP_WAIT_POLICY=PASSIVE (idle OpenMP threads sleep instead of spinning, which would leave CPU
  to the UI): 12-13 tok/s with 2 threads. Hence the default (spinning) policy.
So the UI has to stay out of decode's way instead: it redraws at most ~20 times a second, slows
its updates down when frames get expensive (tui/ui/bridge.py) and never collects garbage
mid-reply (tui/ui/idle_gc.py).

One code path serves send, regenerate and continue: the caller passes the messages to answer
(ending with a user message, or with an assistant reply to continue). The KV cache of the
previous turn is reused for the longest common token prefix (turn_cache.py), so a new turn
prefills only its new tokens.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tui.engine.adapter_control import LocalAdapters
from tui.engine.backend import Capabilities
from tui.engine.compiled import CompileJob
from tui.engine.events import Failed, Finished, Started, TokenDelta, TokenProbs
from tui.engine.hardware import pick_device
from tui.engine.jobs import start_turn, submit
from tui.engine.loading import (
    LoadedModel,
    LoadError,
    ModelInfo,
    find_source,
    free_model,
    load_draft_model,
    load_model,
    release_freed_memory,
)
from tui.engine.metrics import TokenClock
from tui.engine.prompt import Message, PromptBuilder, PromptError
from tui.engine.quantization import check_quantization
from tui.engine.settings import GenerationSettings, LoadSettings
from tui.engine.sources import one_line
from tui.engine.turn import Turn
from tui.engine.turn_cache import TurnCache
from tui.engine.vision import ProcessorPromptBuilder, split_reuse

Progress = Callable[[int, int, str], None]
log = logging.getLogger(__name__)


class Engine:
    """Load a model and generate replies; all torch work runs on one worker thread. A `Backend`
    (tui/engine/backend.py)."""

    def __init__(self, reuse_cache: bool = True) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatui-torch")
        self._loaded: LoadedModel | None = None
        self._builder: PromptBuilder | None = None
        self._draft: LoadedModel | None = None
        self._draft_same_vocab = True
        self.turn_cache = TurnCache(reuse_cache)  # the last turn's KV cache, reused for the common prefix
        self.compile: CompileJob | None = None  # `--compile`: static cache + torch.compile
        self.adapters = LocalAdapters(self._executor, lambda: self._loaded, self.turn_cache)  # LoRA, live

    # -- model ----------------------------------------------------------------------------------

    @property
    def loaded(self) -> LoadedModel | None:
        """The loaded model and tokenizer (None while none is). Read-only: whatever runs them must
        run on the torch thread, as a job of this engine."""
        return self._loaded

    @property
    def prompt_builder(self) -> PromptBuilder | None:
        """How messages become the loaded model's prompt (its chat template, the context budget)."""
        return self._builder

    @property
    def capabilities(self) -> Capabilities:
        loaded = self._loaded
        images = loaded is not None and loaded.processor is not None  # a vision model
        return Capabilities(token_probs=True, token_ids=True, tools=True, prefill=True, images=images, adapters=True)

    @property
    def info(self) -> ModelInfo | None:
        loaded = self._loaded  # read once: the torch thread may set it to None meanwhile
        return loaded.info if loaded else None

    @property
    def load_settings(self) -> LoadSettings | None:
        loaded = self._loaded
        return loaded.settings if loaded else None

    def load(self, settings: LoadSettings, progress: Progress | None = None) -> Future[ModelInfo]:
        """Load (or reload) a model on the torch thread. If it fails and a model was loaded
        before, that model is loaded back and the LoadError says why the new one failed."""
        return submit(
            self._executor, self._load_job, settings, progress, when_closed=LoadError("the engine is shut down")
        )

    def _preflight(self, settings: LoadSettings) -> None:
        """Cheap checks that can fail before the current model is freed."""
        find_source(settings.model)
        check_quantization(settings.quantization, pick_device(settings.device))

    def _load_job(self, settings: LoadSettings, progress: Progress | None) -> ModelInfo:
        previous = self._loaded.settings if self._loaded else None
        if previous is not None:
            self._preflight(settings)  # a bad path or missing backend keeps the current model as is
        self._unload()
        try:
            self._install(load_model(settings, progress))
        except LoadError as exc:
            if previous is None:
                raise
            try:
                kept = load_model(previous, None)
                self._install(kept)
            except LoadError as again:
                raise LoadError(f"{exc} (and reloading the previous model failed: {again})") from exc
            raise LoadError(f"{exc}; kept {kept.info.name}") from exc
        release_freed_memory()  # what loading freed (int4: the bf16 weights) leaves RSS too
        assert self._loaded is not None
        return self._loaded.info

    def _install(self, loaded: LoadedModel) -> None:
        from tui.engine import torch_parts  # on the torch thread: the first import of torch's parts

        torch_parts.use_adaptive_prompt_lookup(loaded.model)
        torch_parts.use_cpu_gqa_attention(loaded.model)
        self._loaded = loaded
        self._draft, self._draft_same_vocab = None, True
        if loaded.settings.draft_model:
            self._draft, self._draft_same_vocab = load_draft_model(loaded)
        self._builder = (
            ProcessorPromptBuilder(loaded.processor, loaded.model)
            if loaded.processor
            else PromptBuilder(loaded.tokenizer)
        )
        self._warm_up(loaded)
        self.compile = None
        if loaded.settings.compile:
            # The next job on this thread, after the load's future resolves: a reply sent
            # meanwhile waits for it (one thread runs torch, see the module docstring).
            self.compile = job = CompileJob(loaded.model, loaded.info.context_size)

            def cancel_if_dropped(f: Future[None]) -> None:
                if f.cancelled():
                    job.cancel()

            self._executor.submit(job.run).add_done_callback(cancel_if_dropped)

    def _unload(self) -> None:
        self.turn_cache.drop()
        if self.compile is not None:
            self.compile.cancel()
        self.compile = None
        free_model(self._draft)
        self._draft = None
        loaded, self._loaded, self._builder = self._loaded, None, None
        free_model(loaded)

    def _warm_up(self, loaded: LoadedModel) -> None:
        """One tiny forward pass so the first reply does not pay for lazy initialisation."""
        import torch

        model = loaded.model
        with torch.inference_mode():
            bos = getattr(model.config.get_text_config(), "bos_token_id", None) or 0
            model(input_ids=torch.tensor([[bos] * 4], device=model.device))

    def unload(self) -> Future[None]:
        """Free the model (a server took over); a later load brings one back."""
        return submit(self._executor, self._unload, when_closed=None)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- generation -----------------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        logprobs: int = 0,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> Turn:
        """Start a reply to `messages` (ending with a user message, or an assistant reply to
        continue). Returns at once; events arrive on the Turn. `logprobs=N` adds a TokenProbs
        event before each piece of text: every token's probability and the N most likely
        alternatives, before and after the sampling filters (prompt lookup and a draft model are
        not used meanwhile: they choose several tokens per step). `tools` (JSON schemas) go to the
        chat template, for models that can call them."""
        return start_turn(
            self._executor,
            self._generate_job,
            [dict(m) for m in messages],
            settings.copy(),
            logprobs,
            list(tools or []),
            closed="the engine is shut down",
        )

    def prefill(self, messages: Sequence[Message], settings: GenerationSettings) -> Future[int]:
        """Bring the KV cache up to `messages` without replying: the app calls this with the
        conversation plus the user's unsent draft when they pause typing, so the reply to what
        they send has only the tokens they typed since (and the reply header) left to prefill.
        Returns how many tokens were prefilled; a generate() submitted meanwhile runs after it."""
        return submit(self._executor, self._prefill_job, [dict(m) for m in messages], settings.copy(), when_closed=0)

    def _prefill_job(self, messages: list[Message], settings: GenerationSettings) -> int:
        loaded = self._loaded
        if not self.turn_cache.reuse or loaded is None or self._builder is None or not messages:
            return 0
        if self.compile is not None and self.compile.state == "ready":
            return 0  # replies start from an empty static cache: nothing to read ahead into
        import torch

        model = loaded.model
        try:
            prompt = self._builder.build(messages, loaded.info.context_size, settings.max_new_tokens)
        except PromptError:
            return 0  # a draft too long for the context: generate() will say so, if it is sent
        ids = prompt.cache_key
        most, pixels = split_reuse(self._builder, prompt, self.turn_cache.cached(ids))
        if pixels:
            return 0  # images not in the cache yet: the reply reads them, with their pixels
        cache, reused = self.turn_cache.for_prompt(loaded, ids, most)
        if cache is None:  # transformers' own cache
            from transformers import DynamicCache

            cache = DynamicCache(config=model.config)
        # The last token is left for generate(), which needs at least one to start from.
        new = prompt.ids[reused:-1]
        if not new:
            return 0
        try:
            with torch.inference_mode():
                model(input_ids=torch.tensor([new], device=model.device), cache=cache, use_cache=True, logits_to_keep=1)
        except Exception as exc:  # e.g. out of memory: nothing is lost, the reply prefills it all
            log.warning("prefill of %d tokens failed (%s): the reply reads them instead", len(new), one_line(exc))
            self.turn_cache.drop()
            return 0
        self.turn_cache.keep(cache, ids)
        return len(new)

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        """How many tokens `messages` take as the model sees them (the chat template applied):
        what the status bar shows as context used. Runs on the torch thread (the tokenizer is
        the engine's); 0 with no model or no messages."""

        def job() -> int:
            builder = self._builder
            if builder is None or not messages:
                return 0
            return builder.token_count([dict(m) for m in messages])

        return submit(self._executor, job, when_closed=0)

    def decode(self, token_ids: Sequence[int]) -> Future[str]:
        """The text of `token_ids` as the model's tokenizer writes it (a branch from a token starts
        from this); runs on the torch thread, after anything queued before it."""

        def job() -> str:
            loaded = self._loaded
            if loaded is None:
                raise PromptError("no model is loaded")
            return loaded.tokenizer.decode(list(token_ids), skip_special_tokens=True)

        return submit(self._executor, job, when_closed=PromptError("the engine is shut down"))

    def parse_response(self, text: str, tools: Sequence[dict[str, Any]] | None = None) -> Future[dict | None]:
        """The reply parsed by the tokenizer's own response template (transformers'
        `parse_response`: content and tool calls), or None where the tokenizer has none or it
        cannot parse this text (the caller then reads the common formats itself)."""

        def job() -> dict | None:
            tokenizer = self._loaded.tokenizer if self._loaded is not None else None
            if tokenizer is None or getattr(tokenizer, "response_template", None) is None:
                return None
            try:
                parsed = tokenizer.parse_response(text, tools=list(tools) if tools else None)
            except Exception as exc:  # a template that does not fit this reply: the fallback reads it
                log.info(
                    "the tokenizer's response template could not parse a reply (%s); "
                    "reading the common formats instead",
                    one_line(exc),
                )
                return None
            return parsed if isinstance(parsed, dict) else None

        return submit(self._executor, job, when_closed=None)

    def _generate_job(
        self,
        turn: Turn,
        messages: list[Message],
        settings: GenerationSettings,
        logprobs: int = 0,
        tools: list[dict[str, Any]] | None = None,
    ) -> None:
        clock = TokenClock()
        streamer = None
        prompt_tokens = prefill = 0
        context = 0
        try:
            if turn.stop_requested:
                raise _StoppedBeforeStart
            loaded = self._loaded
            if loaded is None or self._builder is None:
                raise PromptError("no model is loaded")
            import torch
            from transformers import StoppingCriteriaList

            from tui.engine.torch_parts import EventStreamer, StopWhenAsked

            model, tokenizer = loaded.model, loaded.tokenizer
            context = loaded.info.context_size
            prompt = self._builder.build(messages, context, settings.max_new_tokens, tools)
            prompt_tokens = len(prompt.ids)
            kwargs = settings.generate_kwargs()
            streams = settings.streams  # beam search cannot stream: its reply comes whole, at the end
            recorder = None
            if logprobs and streams:
                from tui.engine.token_recorder import TokenRecorder

                recorder = TokenRecorder(tokenizer, logprobs)
                kwargs.pop("prompt_lookup_num_tokens", None)  # one token per step, one record per token
            static, pixels = None, prompt.model_inputs  # an image prompt read whole: all its pixels
            if (
                self.compile is not None
                and self._draft is None
                and streams
                and recorder is None
                and not kwargs.get("prompt_lookup_num_tokens")
            ):
                static = self.compile.generate_kwargs(prompt_tokens, settings.max_new_tokens)
            if static is not None:  # compiled: a static cache, filled from the start
                self.turn_cache.drop()
                cache, reused = static.pop("cache"), 0
                kwargs.update(static)
            elif not streams:  # several beams: a cache of their own (the turn's cache stays for later)
                from tui.engine.torch_parts import growing_cache

                cache, reused = growing_cache(model, context or None), 0
            else:
                most, pixels = split_reuse(self._builder, prompt, self.turn_cache.cached(prompt.cache_key))
                cache, reused = self.turn_cache.for_prompt(loaded, prompt.cache_key, most)
            kwargs.update(pixels)
            if kwargs.get("stop_strings"):
                kwargs["tokenizer"] = tokenizer  # generate needs it to find stop strings in tokens
            prefill = prompt_tokens - reused
            turn.emit(Started(prompt_tokens, prefill, context, streams))
            if streams:
                on_probs: Callable[[list[int]], None] | None = None
                if recorder is not None:

                    def record(ids: list[int]) -> None:
                        choices = recorder.take(ids)
                        if choices:
                            turn.emit(TokenProbs(tuple(choices)))

                    on_probs = record
                streamer = EventStreamer(
                    tokenizer, lambda text: turn.emit(TokenDelta(text, clock.count)), clock.tick, on_probs
                )
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            input_ids = torch.tensor([prompt.ids], device=model.device)
            if self._draft is not None and recorder is None:  # assisted decoding: the draft proposes, the model checks
                kwargs.pop("prompt_lookup_num_tokens", None)
                kwargs["assistant_model"] = self._draft.model
                if not self._draft_same_vocab:
                    kwargs.update(tokenizer=tokenizer, assistant_tokenizer=self._draft.tokenizer)
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            with torch.inference_mode(), recorder.attached(model) if recorder else contextlib.nullcontext():
                out = model.generate(
                    input_ids=input_ids,
                    attention_mask=torch.ones_like(input_ids),
                    streamer=streamer if streams else None,
                    stopping_criteria=StoppingCriteriaList([StopWhenAsked(lambda: turn.stop_requested)]),
                    cache=cache,
                    return_dict_in_generate=True,
                    pad_token_id=pad,
                    **kwargs,
                )
            sequence = out.sequences[0].tolist()
            new_ids = sequence[prompt_tokens:]
            if not streams:  # the whole reply at once
                text = tokenizer.decode(new_ids, skip_special_tokens=True)
                clock.tick(len(new_ids))
                turn.emit(TokenDelta(text, clock.count))
            else:
                assert streamer is not None  # made above whenever the reply streams
                text = streamer.text
            if static is None and streams:
                self.turn_cache.keep(out.cache, prompt.cache_key + new_ids)
            if turn.stop_requested:
                reason = "stopped"
            elif len(new_ids) >= settings.max_new_tokens and not self._ends_turn(model, new_ids):
                reason = "length"
            else:
                reason = "stop"
            metrics = clock.finish(prompt_tokens, prefill, context)
            turn.emit(Finished(text, reason, metrics, prompt.dropped_messages, loaded.adapters.applied()))
        except _StoppedBeforeStart:
            turn.emit(Finished("", "stopped", clock.finish(0, 0, context)))
        except BaseException as exc:  # anything, so the consumer never hangs
            self.turn_cache.drop()
            text = streamer.text if streamer is not None else ""
            message = (
                str(exc)
                if isinstance(exc, PromptError)
                else f"generation failed: {type(exc).__name__}: {one_line(exc)}"
            )
            turn.emit(Failed(message, text, clock.finish(prompt_tokens, prefill, context)))
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise

    def _ends_turn(self, model: Any, new_ids: list[int]) -> bool:
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        return bool(new_ids) and new_ids[-1] in eos_ids


class _StoppedBeforeStart(Exception):
    pass
