"""`chatui --prompt`: each prompt is one turn of one conversation, the reply streamed to stdout.

It drives the same ChatSession as the app (history, statuses and saving exist once), with the
engine's events read directly instead of through Textual. Exit codes: 0 done, 1 the model or a
turn failed, 2 a bad argument, 130 interrupted (the partial reply is saved, marked stopped).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from tui import token_probs
from tui.chat_session import ChatSession
from tui.engine import Failed, LoadError, Started, TokenDelta, TokenProbs
from tui.engine.backend import Backend
from tui.engine.backends import Backends
from tui.options import Options
from tui.store import AutoSaver, Library, Message, StoreError
from tui.tools.calls import MAX_TOOL_ROUNDS, ToolCall, ToolSet, no_such_tool
from tui.tools.client import ServerStatus, call_tool, list_all

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _open_session(options: Options, stderr: TextIO) -> ChatSession | None:
    """The session the turns go to: a new or continued conversation, saved unless --no-save."""
    saver = AutoSaver.open() if options.save else AutoSaver.memory_only()
    session = ChatSession(saver, options.generation, options.system_prompt or "", options.load)
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


def run_headless(options: Options, engine: Backend | None = None, stdin: TextIO = sys.stdin,
                 stdout: TextIO = sys.stdout, stderr: TextIO = sys.stderr) -> int:
    session = _open_session(options, stderr)
    if session is None:
        return EXIT_USAGE
    backend: Backend = engine or Backends()
    try:
        try:
            info = backend.load(options.load).result()
        except LoadError as exc:
            print(f"chatui: {exc}", file=stderr)
            return EXIT_FAILURE
        session.model_loaded(info.name, backend.load_settings or options.load)
        for warning in info.warnings:
            print(f"chatui: warning: {warning}", file=stderr)
        try:
            logprobs_file = open(options.logprobs_file, "w", encoding="utf-8") if options.logprobs_file else None
        except OSError as exc:
            print(f"chatui: cannot write {options.logprobs_file}: {exc.strerror or exc}", file=stderr)
            return EXIT_USAGE
        tools = _tools(options, stderr)
        try:
            for number, prompt in enumerate(options.prompts, start=1):
                if number > 1:
                    stdout.write("\n")  # a blank line between turns
                session.add_user_message(stdin.read().strip() if prompt == "-" else prompt)
                code = _turn(session, backend, number, options, stdout, stderr, logprobs_file, tools)
                if code:
                    return code
        finally:
            if logprobs_file is not None:
                logprobs_file.close()
        return 0
    finally:
        backend.close()


class _Tools:
    """The configured MCP servers' tools for this run, and which calls may run."""

    def __init__(self, statuses: list[ServerStatus], options: Options) -> None:
        self.toolset = ToolSet.of(statuses)
        self.approve_all = options.approve_all_tools
        self.approved = set(options.approve_tools)

    @property
    def schemas(self) -> list[dict]:
        return self.toolset.schemas

    def run(self, session: ChatSession, call: ToolCall, stderr: TextIO) -> None:
        """Run `call` if the command line allowed it, else refuse it; either way the model is told."""
        server = self.toolset.server_of.get(call.name)
        shown = f"{call.name}({json.dumps(call.arguments, ensure_ascii=False)})"
        if server is None:
            text, outcome = no_such_tool(call.name), "error"
        elif self.approve_all or call.name in self.approved:
            result = asyncio.run(call_tool(server, call.name, call.arguments))
            text, outcome = result.text, "error" if result.is_error else "ok"
        else:
            text, outcome = "The user did not allow this tool call.", "denied"
            print(f"chatui: tool call {shown} refused: not approved (allow it with --approve-tools {call.name} "
                  "or --approve-all-tools)", file=stderr)
        if outcome != "denied":
            first = (text.splitlines() or [""])[0][:120]
            print(f"chatui: tool call {shown} on {server.name if server else '?'}: {outcome}: {first}", file=stderr)
        session.add_tool_result(call, server.name if server else "", text, outcome)


def _tools(options: Options, stderr: TextIO) -> _Tools | None:
    if not options.tool_servers:
        return None
    statuses = list_all(options.tool_servers)
    for status in statuses:
        if status.state != "ready":
            print(f"chatui: warning: MCP server {status.server.name}: {status.detail}", file=stderr)
    tools = _Tools(statuses, options)
    return tools if tools.schemas else None


def _turn(session: ChatSession, engine: Backend, number: int, options: Options, stdout: TextIO,
          stderr: TextIO, logprobs_file: TextIO | None = None, tools: _Tools | None = None) -> int:
    """One user turn: the reply, and while it calls tools, their results and the next reply
    (up to MAX_TOOL_ROUNDS)."""
    for _round in range(MAX_TOOL_ROUNDS + 1):
        code, stored = _reply(session, engine, number, options, stdout, stderr, logprobs_file, tools)
        if code or tools is None or stored is None:
            return code
        calls = session.take_tool_calls(stored, engine.parse_response(stored.content, tools.schemas).result())
        if not calls:
            return 0
        for call in calls:
            tools.run(session, call, stderr)
    print(f"chatui: the model still calls tools after {MAX_TOOL_ROUNDS} rounds; stopped there", file=stderr)
    return EXIT_FAILURE


def _reply(session: ChatSession, engine: Backend, number: int, options: Options, stdout: TextIO, stderr: TextIO,
           logprobs_file: TextIO | None, tools: _Tools | None) -> tuple[int, Message | None]:
    reply = session.start_reply(session.plan_reply("send"))
    turn = engine.generate(reply.messages, session.generation, options.logprobs if logprobs_file else 0,
                           tools.schemas if tools else None)
    try:
        for event in turn:
            if isinstance(event, TokenProbs) and logprobs_file is not None:
                logprobs_file.writelines(token_probs.json_line(choice) + "\n" for choice in event.choices)
                session.reply_token_probs(event.choices)
            if isinstance(event, Started) and not event.streams:
                print(f"chatui: num_beams={session.generation.values.get('num_beams')}: beam search cannot "
                      "stream; the reply comes when it is done", file=stderr)
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
        print(final.metrics.stats_line(number, info.dtype if info else "", info.quantization if info else ""),
              file=stderr, flush=True)
    return 0, stored
