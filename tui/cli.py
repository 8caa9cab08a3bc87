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
EXIT_FAILURE = 1


@dataclass
class Options:
    load: LoadSettings
    generation: GenerationSettings
    system_prompt: str | None = None
    prompts: list[str] = field(default_factory=list)
    stats: bool = False
    theme: str | None = None
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
    parser.add_argument("--trust-remote-code", action="store_true", help="allow code from the model repo to run")
    parser.add_argument("--allow-pickle", action="store_true", help="allow pickle .bin weights (can run code)")
    parser.add_argument("--system-prompt", metavar="TEXT", help="system prompt for the conversation")
    parser.add_argument(
        "--prompt", action="append", metavar="TEXT",
        help="run headless: one user turn per --prompt, replies to stdout ('-' reads a turn from stdin)",
    )
    parser.add_argument("--stats", action="store_true", help="headless: print one stats line per turn to stderr")
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
        )
        if value is not None
    }
    if ns.trust_remote_code:
        load_overrides["trust_remote_code"] = True
    if ns.allow_pickle:
        load_overrides["allow_pickle"] = True
    return Options(
        load=LoadSettings(**load_overrides),
        generation=generation,
        system_prompt=ns.system_prompt,
        prompts=list(ns.prompt or []),
        stats=ns.stats,
        theme=ns.theme,
        load_overrides=load_overrides,
        generation_overrides=overrides,
    )


def run_headless(options: Options, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
                 stderr: TextIO = sys.stderr) -> int:
    from tui.engine import Engine, Failed, Finished, LoadError, TokenDelta

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
    for number, prompt in enumerate(options.prompts, start=1):
        if prompt == "-":
            prompt = stdin.read().strip()
        messages.append({"role": "user", "content": prompt})
        turn = engine.generate(messages, options.generation)
        try:
            for event in turn:
                if isinstance(event, TokenDelta):
                    stdout.write(event.text)
                    stdout.flush()
        except KeyboardInterrupt:
            turn.stop()
            turn.wait()
            stdout.write("\n")
            print("chatui: stopped", file=stderr)
            return 130
        final = turn.final
        stdout.write("\n")
        stdout.flush()
        if isinstance(final, Failed):
            print(f"chatui: {final.error}", file=stderr)
            return EXIT_FAILURE
        assert isinstance(final, Finished)
        if final.dropped_messages:
            print(f"chatui: {final.dropped_messages} oldest messages left out to fit the context", file=stderr)
        messages.append({"role": "assistant", "content": final.text})
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


def main(argv: Sequence[str] | None = None) -> int:
    from tui.store.config import load_config

    options = parse_args(sys.argv[1:] if argv is None else argv)
    config = load_config()
    apply_config(options, config)
    if options.prompts:
        for error in config.errors:
            print(f"chatui: warning: {error}", file=sys.stderr)
        return run_headless(options)
    from tui.app import run_app

    return run_app(options, config)
