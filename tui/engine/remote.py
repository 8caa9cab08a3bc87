"""A model served elsewhere, over the OpenAI chat-completions API: `transformers serve`, vLLM,
llama.cpp's llama-server, Ollama, or any compatible server.

`RemoteBackend` has the in-process engine's API (load → Future[ModelInfo], generate → Turn of the
same events, stop, metrics), so the app and headless mode do not know which one they talk to.
Requests run on a thread of the backend's own (no torch here); replies stream over SSE. Stopping
closes the stream, and the server stops generating. The HTTP client is httpx2 (the maintained
successor of httpx, by its author), which huggingface_hub already brings in. The API key is read
from the environment (or config.toml) when a request is made, and only sent in the header: it
is never stored in a conversation, an export or the log.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx2

from tui.engine.backend import AdapterControl, Capabilities
from tui.engine.compiled import CompileJob
from tui.engine.errors import LoadError
from tui.engine.events import MAX_LOGPROBS, Failed, Finished, Started, TokenDelta, TokenProbs
from tui.engine.jobs import done, failed, start_turn, submit
from tui.engine.loading import ModelInfo
from tui.engine.metrics import TokenClock, TurnMetrics
from tui.engine.openai_stream import (
    Reasoning,
    RemoteError,
    join_tool_call,
    sse_events,
    token_choices,
    tool_call_text,
)
from tui.engine.prompt import Message
from tui.engine.remote_keys import api_key
from tui.engine.settings import GenerationSettings, LoadSettings
from tui.engine.sources import one_line
from tui.engine.turn import Turn

Progress = Callable[[int, int, str], None]
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 120.0  # between two chunks of a reply (a long prefill on a busy server)


def api_base(endpoint: str) -> str:
    """The OpenAI API root of `endpoint`: "http://host:8000" and "http://host:8000/v1/" both give
    "http://host:8000/v1"."""
    base = endpoint.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise LoadError(f"endpoint {endpoint!r}: give a URL starting with http:// or https://")
    return base if base.endswith("/v1") else f"{base}/v1"


def describe_http_error(status: int, body: str, model: str | None) -> str:
    detail = _error_detail(body)
    if status in (401, 403):
        return f"the server refused the request ({status}): check the API key{detail}"
    if status == 404:
        return f"not found (404): the server has no model {model!r} or no chat API here{detail}"
    if status == 429:
        return f"the server is busy or you sent too much (429): try again in a moment{detail}"
    if status >= 500:
        return f"the server failed ({status}){detail}"
    return f"the server answered {status}{detail}"


def _error_detail(body: str) -> str:
    try:
        data = json.loads(body)
        message = data.get("error", data)
        message = message.get("message", message) if isinstance(message, dict) else message
    except (ValueError, AttributeError):
        message = body
    text = " ".join(str(message).split())[:200]
    return f": {text}" if text else ""


def describe_transport_error(exc: Exception, base: str) -> str:
    text = one_line(exc)
    if isinstance(exc, httpx2.TimeoutException):
        return f"{base} did not answer in time ({type(exc).__name__})"
    if isinstance(exc, httpx2.ConnectError):
        lowered = text.lower()
        if "name or service" in lowered or "nodename" in lowered or "getaddrinfo" in lowered or "resolve" in lowered:
            return f"cannot find the host of {base} (DNS lookup failed)"
        if "refused" in lowered:
            return f"cannot connect to {base}: connection refused (is the server running?)"
        return f"cannot connect to {base}: {text}"
    if isinstance(exc, (httpx2.RemoteProtocolError, httpx2.ReadError)):
        return f"the connection to {base} was cut mid-reply ({text})"
    return f"request to {base} failed: {type(exc).__name__}: {text}"


def openai_message(message: Message) -> dict[str, Any]:
    """A message as chat completions take it: content parts with images as `image_url` data URLs
    (documents are already text parts)."""
    content = message.get("content")
    if not isinstance(content, list):
        return dict(message)
    parts = [
        {"type": "image_url", "image_url": {"url": f"data:{p['mime']};base64,{base64.b64encode(p['data']).decode()}"}}
        if p.get("type") == "image"
        else {"type": "text", "text": p.get("text", "")}
        for p in content
    ]
    return dict(message, content=parts)


def request_body(
    model: str, messages: Sequence[Message], settings: GenerationSettings, send_generation_config: bool
) -> dict[str, Any]:
    """The chat-completions request for `settings`, mapped to OpenAI fields (and, for `transformers
    serve`, the whole generation config, as `transformers chat` sends it)."""
    values = settings.values
    body: dict[str, Any] = {
        "model": model,
        "messages": [openai_message(m) for m in messages],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": values["max_new_tokens"],
    }
    if values.get("do_sample", True):
        body["temperature"] = values["temperature"]
        body["top_p"] = values["top_p"]
    else:
        body["temperature"] = 0.0
    if values.get("seed") is not None:  # 0 is a seed too
        body["seed"] = values["seed"]
    for name in ("frequency_penalty", "presence_penalty"):
        if values.get(name):
            body[name] = values[name]
    stop = values.get("stop_strings")
    if stop:
        body["stop"] = stop
    if send_generation_config:
        from tui.engine.generation_config import config_dict

        body["generation_config"] = json.dumps(config_dict(settings.generate_kwargs()))
    return body


class RemoteBackend:
    """An OpenAI-compatible server, as a `Backend` (tui/engine/backend.py). Servers send text,
    not token ids; token probabilities come where the server gives OpenAI's `logprobs`."""

    # images: sent as data URLs; whether the server's model reads them is the server's to say
    capabilities = Capabilities(token_probs=True, tools=True, images=True)

    def __init__(self, transport: httpx2.BaseTransport | None = None) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatui-remote")
        self._transport = transport  # tests may give one
        self.info: ModelInfo | None = None
        self.load_settings: LoadSettings | None = None
        self.compile: CompileJob | None = None  # no torch.compile here
        self.adapters: AdapterControl | None = None  # a server's adapters are its model names
        self._base = ""
        self._transformers_serve = False

    def _client(self, settings: LoadSettings, read_timeout: float | None = None) -> httpx2.Client:
        headers = {"Accept": "application/json"}
        key = api_key(settings)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        read = READ_TIMEOUT_S if read_timeout is None else read_timeout
        timeout = httpx2.Timeout(connect=CONNECT_TIMEOUT_S, read=read, write=30.0, pool=10.0)
        # trust_env: HTTPS_PROXY / NO_PROXY and SSL_CERT_FILE are honoured, as users expect of a client
        return httpx2.Client(headers=headers, timeout=timeout, transport=self._transport, verify=True, trust_env=True)

    # -- connecting ---------------------------------------------------------------------------------

    def load(self, settings: LoadSettings, progress: Progress | None = None) -> Future[ModelInfo]:
        return submit(
            self._executor, self._connect, settings, progress, when_closed=LoadError("the remote backend is shut down")
        )

    def _connect(self, settings: LoadSettings, progress: Progress | None) -> ModelInfo:
        started = time.perf_counter()
        base = api_base(settings.endpoint or "")
        if progress is not None:
            progress(20, 100, f"connecting to {base}")
        try:
            with self._client(settings, read_timeout=30.0) as client:
                response = client.get(f"{base}/models")
        except httpx2.HTTPError as exc:
            raise LoadError(describe_transport_error(exc, base)) from None
        except (httpx2.InvalidURL, ValueError) as exc:  # a malformed URL (a bad port, a bad host)
            raise LoadError(f"endpoint {base!r} is not a usable URL: {one_line(exc)}") from None
        if response.status_code != 200:
            raise LoadError(describe_http_error(response.status_code, response.text, settings.model))
        try:
            listing = response.json()
        except ValueError:
            listing = None
        if not isinstance(listing, dict) or not isinstance(listing.get("data"), list):
            raise LoadError(f"{base}/models did not answer with a model list: is it an OpenAI-compatible server?")
        entries = [entry for entry in listing["data"] if isinstance(entry, dict)]
        models = [str(entry.get("id")) for entry in entries if entry.get("id")]
        model = settings.model or (models[0] if models else None)
        if model is None:
            raise LoadError(f"{base} serves no model (its /v1/models list is empty)")
        if models and model not in models:
            raise LoadError(f"{base} does not serve {model!r}; it serves: {', '.join(models[:10])}")
        entry = next((e for e in entries if e.get("id") == model), {})
        # `status` is not an OpenAI field: transformers serve adds it (and takes a generation config).
        self._transformers_serve = any("status" in e for e in entries)
        self._base = base
        context = next(
            (
                entry[key]
                for key in ("max_model_len", "context_length", "max_context_length")
                if isinstance(entry.get(key), int)
            ),
            0,
        )
        self.load_settings = settings
        self.info = ModelInfo(
            name=model,
            source=base,
            device="remote",
            dtype="remote",
            quantization="remote",
            attn_implementation="remote",
            context_size=context,
            parameters=0,
            footprint_bytes=0,
            has_chat_template=True,
            load_seconds=time.perf_counter() - started,
            available_models=models,
            served_adapters={
                str(e["id"]): str(e["parent"])
                for e in entries
                if e.get("id") and isinstance(e.get("parent"), str) and e["parent"] not in ("", e["id"])
            },
        )
        if progress is not None:
            progress(100, 100, "ready")
        return self.info

    # -- replies --------------------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        logprobs: int = 0,
        tools: Sequence[dict[str, Any]] | None = None,
    ) -> Turn:
        """As the engine's; `logprobs=N` asks the server for OpenAI's `top_logprobs` (servers that
        return them give the sampled distribution only: before and after are the same)."""
        return start_turn(
            self._executor,
            self._generate_job,
            [dict(m) for m in messages],
            settings.copy(),
            logprobs,
            list(tools or []),
            closed="the backend is shut down",
        )

    def _generate_job(
        self,
        turn: Turn,
        messages: list[Message],
        settings: GenerationSettings,
        logprobs: int = 0,
        tools: list[dict[str, Any]] | None = None,
    ) -> None:
        clock = TokenClock()
        parts: list[str] = []
        reasoning = Reasoning()
        usage: dict[str, Any] = {}
        finish: str | None = None
        info, load = self.info, self.load_settings
        context = info.context_size if info else 0

        def metrics() -> TurnMetrics:
            result = clock.finish(int(usage.get("prompt_tokens") or 0), int(usage.get("prompt_tokens") or 0), context)
            if usage.get("completion_tokens"):
                result.new_tokens = int(usage["completion_tokens"])
            result.rss_bytes = 0
            return result

        try:
            if info is None or load is None:
                raise RemoteError("not connected to a server")
            body = request_body(info.name, messages, settings, self._transformers_serve)
            if logprobs:
                body.update(logprobs=True, top_logprobs=min(int(logprobs), MAX_LOGPROBS))
            if tools:
                body["tools"] = tools
            calls: dict[int, dict[str, Any]] = {}  # tool_calls deltas, joined by index
            turn.emit(Started(0, 0, context))
            with (
                self._client(load) as client,
                client.stream("POST", f"{self._base}/chat/completions", json=body) as response,
                _closed_on_stop(turn, response),
            ):
                if response.status_code != 200:
                    response.read()
                    raise RemoteError(describe_http_error(response.status_code, response.text, info.name))
                for event in sse_events(response.iter_lines()):
                    if turn.stop_requested:
                        break  # leaving the block closes the stream: the server stops generating
                    if event.get("usage"):
                        usage = event["usage"]
                    for choice in event.get("choices") or []:
                        delta = choice.get("delta") or {}
                        if logprobs:
                            choices = token_choices(choice.get("logprobs"))
                            if choices:
                                turn.emit(TokenProbs(choices))
                        for piece in delta.get("tool_calls") or []:
                            join_tool_call(calls, piece)
                        text = reasoning.text(delta)
                        if text:
                            clock.tick(1)
                            parts.append(text)
                            turn.emit(TokenDelta(text, clock.count))
                        finish = choice.get("finish_reason") or finish
            parts.append(reasoning.close())
            if calls:  # written as the common <tool_call> form, which the chat reads like a local model's
                written = "".join(tool_call_text(calls[i]) for i in sorted(calls))
                parts.append(written)
                turn.emit(TokenDelta(written, clock.count))
            if turn.stop_requested:
                reason = "stopped"
            elif finish is None:
                raise RemoteError("the stream ended before the reply did (no finish reason)")
            else:
                reason = "length" if finish == "length" else "stop"
            turn.emit(Finished("".join(parts), reason, metrics()))
        except (RemoteError, ValueError, httpx2.HTTPError, httpx2.StreamError) as exc:
            if turn.stop_requested:  # the stream was closed under a read (Stop while the server was silent)
                turn.emit(Finished("".join(parts) + reasoning.close(), "stopped", metrics()))
            elif isinstance(exc, RemoteError):
                turn.emit(Failed(str(exc), "".join(parts), metrics()))
            elif isinstance(exc, ValueError):
                turn.emit(Failed(f"the server sent a malformed event: {one_line(exc)}", "".join(parts), metrics()))
            else:
                turn.emit(Failed(describe_transport_error(exc, self._base), "".join(parts), metrics()))
        except BaseException as exc:  # anything: the consumer must never hang
            turn.emit(Failed(f"generation failed: {type(exc).__name__}: {one_line(exc)}", "".join(parts), metrics()))
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise

    def prefill(self, messages: Sequence[Message], settings: GenerationSettings) -> Future[int]:
        return done(0)  # the server keeps its own cache

    def count_tokens(self, messages: Sequence[Message]) -> Future[int]:
        return done(0)  # unknown here: the status bar takes the server's usage figures

    def parse_response(self, text: str, tools: Sequence[dict[str, Any]] | None = None) -> Future[dict | None]:
        return done(None)  # tool calls come as tool_calls deltas, written as text the chat reads

    def decode(self, token_ids: Sequence[int]) -> Future[str]:
        return failed(NotImplementedError("a remote server's tokens come without ids"))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@contextlib.contextmanager
def _closed_on_stop(turn: Turn, response: httpx2.Response) -> Iterator[None]:
    """Shut the connection down as soon as the turn is stopped, even while a read waits on a
    silent server (a long prefill, a stall): Stop and quitting never wait for the read timeout.
    (Closing the response from another thread does not wake a blocked read; shutting the socket
    down does.)"""
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if turn.wait_for_stop(0.1):
                stream = response.extensions.get("network_stream")
                sock = stream.get_extra_info("socket") if stream is not None else None
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return

    watcher = threading.Thread(target=watch, name="chatui-remote-stop", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        finished.set()
