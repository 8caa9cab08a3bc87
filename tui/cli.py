"""Command line: `chatui [MODEL] [key=value ...] [options]`.

With `--prompt` it runs headless (each prompt one turn, replies streamed to stdout); without,
it opens the Textual app. Bad input exits 2 with one clear line, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence, TextIO

from tui import __version__
from tui.engine.settings import (
    ATTENTION_IMPLEMENTATIONS,
    DEVICES,
    DTYPES,
    PARAM_SPECS,
    QUANTIZATIONS,
    GenerationSettings,
    LoadSettings,
    SettingsError,
    parse_key_values,
)

if TYPE_CHECKING:
    from tui.store.config import Config

EXIT_USAGE = 2
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
EXIT_FAILURE = 1


@dataclass
class Options:
    load: LoadSettings
    generation: GenerationSettings
    system_prompt: str | None = None
    prompts: list[str] = field(default_factory=list)
    stats: bool = False
    theme: str | None = None
    save: bool = True
    conversation: str | None = None
    library_command: tuple[str, ...] | None = None  # ("list",), ("export", ref, fmt, out), ("import", path)
    # What the user set on the command line (for config precedence: defaults < config < CLI).
    load_overrides: dict[str, Any] = field(default_factory=dict)
    generation_overrides: dict[str, Any] = field(default_factory=dict)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(EXIT_USAGE, f"chatui: error: {message}\n(see chatui --help)\n")


def build_parser() -> argparse.ArgumentParser:
    keys = ", ".join(spec.name for spec in PARAM_SPECS)
    parser = _Parser(
        prog="chatui",
        description="Chat with a local Hugging Face transformers model in your terminal.",
        epilog=f"Generation settings as key=value: {keys}. "
        "Example: chatui do_sample=false max_new_tokens=64 --prompt 'Hello'",
    )
    parser.add_argument(
        "args", nargs="*", metavar="[MODEL] [key=value ...]",
        help="a Hub id, a model directory or a .gguf file (default: the bundled SmolLM2-135M-Instruct), "
        "then generation settings",
    )
    parser.add_argument("--dtype", choices=DTYPES, help="weights dtype (default: auto)")
    parser.add_argument("--device", choices=DEVICES, help="where the model runs (default: auto)")
    parser.add_argument("--quantization", choices=QUANTIZATIONS, help="bitsandbytes quantization (default: none)")
    parser.add_argument("--attn-implementation", choices=ATTENTION_IMPLEMENTATIONS, help="attention kernel")
    parser.add_argument("--draft-model", metavar="MODEL",
                        help="a small model with the same tokenizer that drafts tokens (assisted decoding)")
    parser.add_argument("--compile", action="store_true",
                        help="static KV cache + torch.compile, compiled in the background after load")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow code from the model repo to run")
    parser.add_argument("--allow-pickle", action="store_true", help="allow pickle .bin weights (can run code)")
    parser.add_argument("--system-prompt", metavar="TEXT", help="system prompt for the conversation")
    parser.add_argument(
        "--prompt", action="append", metavar="TEXT",
        help="run headless: one user turn per --prompt, replies to stdout ('-' reads a turn from stdin)",
    )
    parser.add_argument("--stats", action="store_true", help="headless: print one stats line per turn to stderr")
    parser.add_argument("--no-save", action="store_true", help="headless: do not save the turns to the library")
    library = parser.add_argument_group("conversations")
    library.add_argument("--list", action="store_true", help="list saved conversations and exit")
    library.add_argument("--conversation", metavar="ID|last",
                         help="open a saved conversation (headless: continue it)")
    library.add_argument("--export", metavar="ID|last", help="export a conversation and exit")
    library.add_argument("--format", choices=("json", "md"), default="json", help="export format (default json)")
    library.add_argument("-o", "--output", metavar="FILE", help="export to FILE instead of stdout")
    library.add_argument("--import", dest="import_file", metavar="FILE",
                         help="import a conversation file (chatui JSON, transformers chat JSON, "
                         "OpenAI-style messages) and print its new id")
    parser.add_argument("--theme", metavar="NAME", help="colour theme of the app")
    parser.add_argument("--version", action="version", version=f"chatui {__version__}")
    return parser


def parse_args(argv: Sequence[str]) -> Options:
    parser = build_parser()
    ns = parser.parse_intermixed_args(list(argv))
    words = list(ns.args)
    model = None
    if words and "=" not in words[0]:
        model = words.pop(0)
    stray = [w for w in words if "=" not in w]
    if stray:
        parser.error(f"unexpected argument {stray[0]!r}: give the model first, then key=value settings")
    try:
        overrides = parse_key_values(words)
        generation = GenerationSettings().with_updates(overrides)
    except SettingsError as exc:
        parser.error(str(exc))
    load_overrides = {
        key: value
        for key, value in (
            ("model", model),
            ("dtype", ns.dtype),
            ("device", ns.device),
            ("quantization", ns.quantization),
            ("attn_implementation", ns.attn_implementation),
            ("draft_model", ns.draft_model),
        )
        if value is not None
    }
    if ns.compile:
        load_overrides["compile"] = True
    if ns.trust_remote_code:
        load_overrides["trust_remote_code"] = True
    if ns.allow_pickle:
        load_overrides["allow_pickle"] = True
    command: tuple[str, ...] | None = None
    if ns.list:
        command = ("list",)
    elif ns.export:
        command = ("export", ns.export, ns.format, ns.output or "")
    elif ns.import_file:
        command = ("import", ns.import_file)
    return Options(
        load=LoadSettings(**load_overrides),
        generation=generation,
        system_prompt=ns.system_prompt,
        prompts=list(ns.prompt or []),
        stats=ns.stats,
        theme=ns.theme,
        load_overrides=load_overrides,
        generation_overrides=overrides,
        save=not ns.no_save,
        conversation=ns.conversation,
        library_command=command,
    )


def run_headless(options: Options, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                 stderr: TextIO = sys.stderr) -> int:
    from tui.engine import Engine, Failed, Finished, LoadError, TokenDelta

    from tui.store import AutoSaver, Library, StoreError

    saver = None
    history: list[dict[str, str]] = []
    if options.save or options.conversation:
        saver = AutoSaver.open()
        if options.conversation:
            try:
                library = saver.library or Library()
                conv = saver.resume(library.resolve_id(options.conversation))
            except (StoreError, KeyError) as exc:
                print(f"chatui: --conversation {options.conversation}: {exc}", file=stderr)
                return EXIT_USAGE
            history = [{"role": m.role, "content": m.content} for m in conv.messages if m.status != "failed"]
            if options.system_prompt is None:
                options.system_prompt = conv.system_prompt
        else:
            saver.start(model=options.load.model or DEFAULT_MODEL_NAME, load_settings=options.load.as_dict(),
                        generation_settings=options.generation.as_dict(), system_prompt=options.system_prompt)
        if saver.last_error and not saver.pending:
            print(f"chatui: warning: {saver.last_error}; turns are not saved", file=stderr)
    engine = Engine()
    try:
        engine.load(options.load).result()
    except LoadError as exc:
        print(f"chatui: {exc}", file=stderr)
        return EXIT_FAILURE
    for warning in engine.info.warnings:
        print(f"chatui: warning: {warning}", file=stderr)
    messages: list[dict[str, str]] = []
    if options.system_prompt:
        messages.append({"role": "system", "content": options.system_prompt})
    messages += history
    for number, prompt in enumerate(options.prompts, start=1):
        if prompt == "-":
            prompt = stdin.read().strip()
        messages.append({"role": "user", "content": prompt})
        if saver is not None and options.save:
            saver.user_message(prompt)
        turn = engine.generate(messages, options.generation)
        try:
            for event in turn:
                if isinstance(event, TokenDelta):
                    stdout.write(event.text)
                    stdout.flush()
        except KeyboardInterrupt:
            turn.stop()
            final = turn.wait()
            stdout.write("\n")
            if saver is not None and options.save and final.text:
                saver.assistant_message(final.text, status="stopped", stats=None)
            print("chatui: stopped", file=stderr)
            return 130
        final = turn.final
        stdout.write("\n")
        stdout.flush()
        if isinstance(final, Failed):
            print(f"chatui: {final.error}", file=stderr)
            if saver is not None and options.save and final.text:
                saver.assistant_message(final.text, status="failed", stats=None)
            return EXIT_FAILURE
        assert isinstance(final, Finished)
        if final.dropped_messages:
            print(f"chatui: {final.dropped_messages} oldest messages left out to fit the context", file=stderr)
        messages.append({"role": "assistant", "content": final.text})
        if saver is not None and options.save:
            status = {"stopped": "stopped", "length": "length"}.get(final.reason, "ok")
            saver.assistant_message(final.text, status=status, stats=final.metrics.as_dict())
            if saver.last_error:
                print(f"chatui: warning: not saved: {saver.last_error}", file=stderr)
        if options.stats:
            print(final.metrics.stats_line(number), file=stderr, flush=True)
    engine.shutdown()
    return 0


def apply_config(options: Options, config: "Config") -> None:
    """Built-in defaults < config.toml < command-line flags."""
    options.load = config.load_settings(options.load_overrides)
    options.generation = config.generation_settings(options.generation_overrides)
    if options.system_prompt is None:
        options.system_prompt = config.system_prompt
    if options.theme is None:
        options.theme = config.theme


def run_library_command(command: tuple[str, ...]) -> int:
    from pathlib import Path

    from tui.store import Library, StoreError, export_command, import_command, list_command

    try:
        library = Library()
    except StoreError as exc:
        print(f"chatui: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if library.recovered_from is not None:
        print(f"chatui: warning: the library was damaged; moved to {library.recovered_from}", file=sys.stderr)
    with library:
        if command[0] == "list":
            return list_command(library, sys.stdout, sys.stderr)
        if command[0] == "export":
            _, ref, fmt, output = command
            return export_command(library, ref, fmt, Path(output) if output else None, sys.stdout, sys.stderr)
        return import_command(library, Path(command[1]), sys.stdout, sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from tui.store.config import load_config

    options = parse_args(sys.argv[1:] if argv is None else argv)
    if options.library_command:
        return run_library_command(options.library_command)
    config = load_config()
    apply_config(options, config)
    if options.prompts:
        for error in config.errors:
            print(f"chatui: warning: {error}", file=sys.stderr)
        return run_headless(options)
    from tui.app import run_app

    return run_app(options, config, options.conversation)
