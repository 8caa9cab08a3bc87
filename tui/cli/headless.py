"""`chatui --prompt`: each prompt is one turn of one conversation, the reply streamed to stdout.

It drives the same ChatSession as the app (history, statuses and saving exist once), with the
engine's events read directly instead of through Textual. Exit codes: 0 done, 1 the model or a
turn failed, 2 a bad argument, 130 interrupted (the partial reply is saved, marked stopped).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import TextIO, TypeVar

from tui import token_probs
from tui.core.attachments import AttachmentError, read_attachment, resolve_path
from tui.core.chat_session import ChatSession
from tui.core.options import Options
from tui.core.tool_loop import RUN_ONCE, Answered, Decision, ToolLoop, ToolRoundLimit
from tui.engine import Failed, LoadError, Started, TokenDelta, TokenProbs
from tui.engine.adapters import describe
from tui.engine.backend import Backend
from tui.engine.backends import Backends
from tui.engine.errors import AdapterError
from tui.engine.estimates import limit_pct
from tui.engine.loading import ModelInfo
from tui.engine.machine import cached_bandwidth, memory_bandwidth, raise_bandwidth
from tui.store import AutoSaver, Library, Message, StoreError
from tui.tools.calls import ToolCall

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

T = TypeVar("T")


def _open_session(options: Options, backend: Backend, stderr: TextIO) -> ChatSession | None:
    """The session the turns go to: a new or continued conversation, saved unless --no-save."""
    saver = AutoSaver.open() if options.save else AutoSaver.memory_only()
    session = ChatSession(saver, options.generation, options.system_prompt or "", options.load, backend)
    if options.conversation:
        try:
            library = saver.library or Library()
            conv = session.open(library.resolve_id(options.conversation), library=library)
        except (StoreError, KeyError) as exc:
            print(f"chatui: --conversation {options.conversation}: {exc}", file=stderr)
            return None
        if options.system_prompt is None:
            session.system_prompt = conv.system_prompt or ""
    else:
        session.new()
    if options.save and saver.last_error and not saver.pending:
        print(f"chatui: warning: {saver.last_error}; turns are not saved", file=stderr)
    return session


def run_headless(
    options: Options,
    engine: Backend | None = None,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    stderr: TextIO = sys.stderr,
) -> int:
    backend: Backend = engine or Backends()
    try:  # read before the model loads: a missing or unreadable file costs no load
        attachments = [read_attachment(resolve_path(path), image_only) for path, image_only in options.attachments]
    except AttachmentError as exc:
        print(f"chatui: {exc}", file=stderr)
        backend.close()
        return EXIT_USAGE
    session = _open_session(options, backend, stderr)
    if session is None:
        backend.close()
        return EXIT_USAGE
    try:
        line = LoadLine(stderr)
        try:
            info = line.wait(backend.load(options.load, line.show))
        except LoadError as exc:
            line.clear()
            print(f"chatui: {exc}", file=stderr)
            return EXIT_FAILURE
        line.clear()
        if options.stats:
            print(f"load model={info.name} load_ms={info.load_seconds * 1000:.0f}", file=stderr, flush=True)
        for warning in info.warnings:
            print(f"chatui: warning: {warning}", file=stderr)
        if options.adapters and not _load_adapters(options, backend, stderr):
            return EXIT_FAILURE
        try:
            logprobs_file = open(options.logprobs_file, "w", encoding="utf-8") if options.logprobs_file else None
        except OSError as exc:
            print(f"chatui: cannot write {options.logprobs_file}: {exc.strerror or exc}", file=stderr)
            return EXIT_USAGE
        tools = _tool_loop(options, stderr)
        try:
            for number, prompt in enumerate(options.prompts, start=1):
                if number > 1:
                    stdout.write("\n")  # a blank line between turns
                text = stdin.read().strip() if prompt == "-" else prompt
                attached = attachments if number == 1 else []
                problem = session.attachment_problem(attached, text)
                if problem:  # before anything is sent or saved
                    print(f"chatui: {problem}", file=stderr)
                    return EXIT_USAGE
                session.add_user_message(text, attachments=attached)
                code = _turn(session, backend, number, options, stdout, stderr, logprobs_file, tools)
                if code:
                    return code
        finally:
            if logprobs_file is not None:
                logprobs_file.close()
        return 0
    finally:
        backend.close()


class LoadLine:
    """chatui's own progress line while a model loads (the first run converts the bundled GGUF,
    tens of seconds): on a terminal one line, rewritten in place and cleared once loaded; into a
    pipe nothing (the libraries' own bars go to the log, never here)."""

    def __init__(self, stderr: TextIO) -> None:
        self.stderr = stderr
        self.live = stderr.isatty()
        self.started = time.monotonic()
        self.shown = False
        self.last: tuple[int, int, str] | None = None

    def show(self, done: int, total: int, label: str) -> None:
        self.last = (done, total, label)
        if not self.live or done >= total:
            return
        elapsed = time.monotonic() - self.started
        self.stderr.write(f"\r\x1b[2Kchatui: {label} · {100 * done // max(total, 1)} % · {elapsed:.0f} s")
        self.stderr.flush()
        self.shown = True

    def wait(self, future: Future[T]) -> T:
        """The load's result; meanwhile the line's clock moves every second, even while a step
        (reading a GGUF's header, say) reports nothing."""
        while True:
            try:
                return future.result(timeout=1.0)
            except FuturesTimeout:
                if self.last is not None:
                    self.show(*self.last)

    def clear(self) -> None:
        if self.shown:
            self.stderr.write("\r\x1b[2K")
            self.stderr.flush()
            self.shown = False


def _load_adapters(options: Options, backend: Backend, stderr: TextIO) -> bool:
    """`--adapter`s onto the loaded model (the last one in use), merged with `--merge-adapter`;
    False, with the reason printed, when one cannot be."""
    adapters = backend.adapters
    if adapters is None:
        print("chatui: --adapter needs a model loaded here (a server's adapters are its model names)", file=stderr)
        return False
    try:
        for name, path in options.adapters:
            for warning in adapters.load(path, name).result().warnings:
                print(f"chatui: warning: {warning}", file=stderr)
        if options.merge_adapter:
            state = adapters.merge().result()
            print(f"chatui: {state.label()}: switching adapters now needs a reload", file=stderr)
    except AdapterError as exc:
        print(f"chatui: {exc}", file=stderr)
        return False
    return True


class CommandLineApproval:
    """Headless approval: the calls of the tools --approve-tools names run (all of them with
    --approve-all-tools); any other is refused, and the refusal is printed."""

    def __init__(self, options: Options, stderr: TextIO) -> None:
        self.approve_all = options.approve_all_tools
        self.approved = set(options.approve_tools)
        self.stderr = stderr

    async def decide(self, call: ToolCall, server: str) -> Decision:
        if self.approve_all or call.name in self.approved:
            return RUN_ONCE
        print(
            f"chatui: tool call {_shown(call)} refused: not approved (allow it with --approve-tools {call.name} "
            "or --approve-all-tools)",
            file=self.stderr,
        )
        return Decision(run=False)


def _shown(call: ToolCall) -> str:
    return f"{call.name}({json.dumps(call.arguments, ensure_ascii=False)})"


def _tool_loop(options: Options, stderr: TextIO) -> ToolLoop:
    """The run's tool loop, its servers probed (a server that is not ready is a warning)."""
    tools = ToolLoop(CommandLineApproval(options, stderr), options.tool_servers, options.tool_problems)
    if tools.servers:
        for status in asyncio.run(tools.probe()):
            if status.state != "ready":
                print(f"chatui: warning: MCP server {status.server.name}: {status.detail}", file=stderr)
    return tools


def _turn(
    session: ChatSession,
    engine: Backend,
    number: int,
    options: Options,
    stdout: TextIO,
    stderr: TextIO,
    logprobs_file: TextIO | None,
    tools: ToolLoop,
) -> int:
    """One user turn: the reply, and while it calls tools, their results and the next reply
    (up to MAX_TOOL_ROUNDS rounds of calls)."""

    async def answered(result: Answered) -> None:
        if result.outcome != "denied":  # a refusal was printed as it was decided
            first = (result.text.splitlines() or [""])[0][:120]
            print(
                f"chatui: tool call {_shown(result.call)} on {result.server or '?'}: {result.outcome}: {first}",
                file=stderr,
            )

    tools.new_user_turn()
    while True:
        code, stored = _reply(session, engine, number, options, stdout, stderr, logprobs_file, tools)
        if code or stored is None:
            return code
        try:
            calls = asyncio.run(tools.take_calls(engine, session, stored))
        except ToolRoundLimit as exc:
            print(f"chatui: {exc}", file=stderr)
            return EXIT_FAILURE
        if not calls:
            return 0
        asyncio.run(tools.answer(session, calls, answered))


def _reply(
    session: ChatSession,
    engine: Backend,
    number: int,
    options: Options,
    stdout: TextIO,
    stderr: TextIO,
    logprobs_file: TextIO | None,
    tools: ToolLoop,
) -> tuple[int, Message | None]:
    reply = session.start_reply(session.plan_reply("send"))
    turn = engine.generate(
        reply.messages, session.generation, options.logprobs if logprobs_file else 0, tools.offered()
    )
    try:
        for event in turn:
            if isinstance(event, TokenProbs) and logprobs_file is not None:
                logprobs_file.writelines(token_probs.json_line(choice) + "\n" for choice in event.choices)
                session.reply_token_probs(event.choices)
            if isinstance(event, Started) and not event.streams:
                print(
                    f"chatui: num_beams={session.generation.values.get('num_beams')}: beam search cannot "
                    "stream; the reply comes when it is done",
                    file=stderr,
                )
            if isinstance(event, TokenDelta):
                stdout.write(event.text)
                stdout.flush()
                session.reply_progress(event.text)  # saved every ~2 s: a kill loses at most that
    except KeyboardInterrupt:
        turn.stop()
        session.end_reply(turn.wait())
        stdout.write("\n")
        print("chatui: stopped", file=stderr)
        return EXIT_INTERRUPTED, None
    final = turn.final
    assert final is not None
    stdout.write("\n")
    stdout.flush()
    stored = session.end_reply(final)
    saver = session.saver
    if isinstance(final, Failed):
        print(f"chatui: {final.error}", file=stderr)
        return EXIT_FAILURE, None
    if final.dropped_messages:
        print(f"chatui: {final.dropped_messages} oldest messages left out to fit the context", file=stderr)
    if options.save and saver.last_error:
        print(f"chatui: warning: not saved: {saver.last_error}", file=stderr)
    if options.stats:
        info = engine.info
        # one key=value word: "tone", "a×0.5+b×0.5", "tone(merged)"
        adapter = describe(final.adapters).replace(" ", "") if final.adapters or options.adapters else ""
        line = final.metrics.stats_line(
            number,
            info.dtype if info else "",
            info.quantization if info else "",
            adapter=adapter,
            limit_pct=bandwidth_share(info, final.metrics.decode_tok_s),
        )
        print(line, file=stderr, flush=True)
    return 0, stored


def bandwidth_share(info: ModelInfo | None, decode_tok_s: float) -> float | None:
    """Decode speed as a percentage of this machine's bandwidth limit for the loaded model (the
    CPU's bandwidth measured once, about a second, between turns; a GPU's from `--doctor`'s
    cache); None for a server's model or when it is not known."""
    if info is None or info.remote or not info.bytes_per_token or decode_tok_s <= 0:
        return None
    if info.device == "cuda":
        bandwidth = cached_bandwidth("cuda")
    else:
        bandwidth = memory_bandwidth("cpu")
    if bandwidth is None:
        return None
    share = limit_pct(decode_tok_s, info.bytes_per_token, bandwidth.bytes_per_s)
    if share > 100:  # the figure was measured while something else ran: this decode beat it
        raise_bandwidth(info.device, decode_tok_s * info.bytes_per_token)
        return 100.0
    return share
