"""Command line: `chatui [MODEL] [key=value ...] [options]`.

It turns the arguments into Options, then runs one of: a library command (`--list`,
`--export`, `--import`), headless turns (`--prompt`), or the Textual app. Imports run one way,
from here to the rest. Bad input exits 2 with one clear line, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from tui import __version__
from tui.core.options import Options
from tui.engine.events import MAX_LOGPROBS
from tui.engine.generation_config import GenerationConfigError
from tui.engine.generation_config import load_file as load_generation_file
from tui.engine.remote_keys import KEY_ENDPOINT, KEY_FROM_CONFIG
from tui.engine.settings import (
    ATTENTION_IMPLEMENTATIONS,
    DEVICES,
    DTYPES,
    LOAD_FIELDS,
    PARAM_SPECS,
    QUANTIZATION_ALIASES,
    QUANTIZATIONS,
    SPECS_BY_NAME,
    GenerationSettings,
    LoadSettings,
    SettingsError,
    parse_key_values,
)
from tui.engine.sources import DEFAULT_MODEL_NAME
from tui.logs import route_library_logs
from tui.store.config import Config, load_config

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(EXIT_USAGE, f"chatui: error: {message}\n(see chatui --help)\n")


def build_parser() -> argparse.ArgumentParser:
    keys = ", ".join(spec.name for spec in PARAM_SPECS) + " (or any GenerationConfig field)"
    parser = _Parser(
        prog="chatui",
        description="Chat with a local Hugging Face transformers model in your terminal.",
        epilog=f"Generation settings as key=value: {keys}. "
        "Example: chatui do_sample=false max_new_tokens=64 --prompt 'Hello'",
    )
    parser.add_argument(
        "args",
        nargs="*",
        metavar="[MODEL] [key=value ...]",
        help=f"a Hub id, a model directory or a .gguf file (default: the bundled {DEFAULT_MODEL_NAME}), "
        "then generation settings",
    )
    parser.add_argument("--dtype", choices=DTYPES, help="weights dtype (default: auto)")
    parser.add_argument("--device", choices=DEVICES, help="where the model runs (default: auto)")
    parser.add_argument(
        "--quantization",
        choices=(*QUANTIZATIONS, *QUANTIZATION_ALIASES),
        help="int4 (torchao weight-only, fast on CPU), bnb-8bit or bnb-4bit (bitsandbytes; "
        "8bit and 4bit are the same); default: none",
    )
    parser.add_argument("--attn-implementation", choices=ATTENTION_IMPLEMENTATIONS, help="attention kernel")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        help="chat with a model on an OpenAI-compatible server (transformers serve, vLLM, "
        "llama-server, Ollama) instead of loading one here; MODEL then names the server's model",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="the environment variable that holds the server's API key (e.g. OPENAI_API_KEY)",
    )
    parser.add_argument(
        "--draft-model",
        metavar="MODEL",
        help="a small model with the same tokenizer that drafts tokens (assisted decoding)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="static KV cache + torch.compile, compiled in the background after load",
    )
    parser.add_argument(
        "--adapter",
        action="append",
        metavar="[NAME=]PATH",
        help="a LoRA adapter (a folder or Hub id) on the model, named NAME (default: its folder's name); "
        "repeatable: the last one is in use, the others can be switched to in the app",
    )
    parser.add_argument(
        "--merge-adapter",
        action="store_true",
        help="merge the adapter in use into the weights (full speed; switching adapters then needs a reload)",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="allow code from the model repo to run")
    parser.add_argument("--allow-pickle", action="store_true", help="allow pickle .bin weights (can run code)")
    parser.add_argument("--system-prompt", metavar="TEXT", help="system prompt for the conversation")
    parser.add_argument(
        "--generation-config",
        metavar="FILE_OR_DIR",
        help="a generation_config.json (or a folder with one) whose settings come before "
        "config.toml's and the key=value ones, as in transformers chat",
    )
    parser.add_argument(
        "--prompt",
        action="append",
        metavar="TEXT",
        help="run headless: one user turn per --prompt, replies to stdout ('-' reads a turn from stdin)",
    )
    parser.add_argument(
        "--image",
        action=_Attach,
        dest="attachments",
        metavar="PATH",
        help="headless: attach an image to the first --prompt (repeatable; needs a vision model)",
    )
    parser.add_argument(
        "--file",
        action=_Attach,
        dest="attachments",
        metavar="PATH",
        help="headless: attach a document (text, Markdown, code, CSV, JSON, PDF) or an image to the first --prompt "
        "(repeatable)",
    )
    parser.add_argument("--stats", action="store_true", help="headless: print one stats line per turn to stderr")
    parser.add_argument("--no-save", action="store_true", help="headless: do not save the turns to the library")
    parser.add_argument(
        "--logprobs",
        type=int,
        metavar="N",
        help="headless: record each token's log-probability and the N most likely tokens "
        f"after the sampling filters (1-{MAX_LOGPROBS}); needs --logprobs-file",
    )
    parser.add_argument(
        "--logprobs-file", metavar="PATH", help="headless: write one JSON line per generated token there"
    )
    library = parser.add_argument_group("conversations")
    library.add_argument("--list", action="store_true", help="list saved conversations and exit")
    parser.add_argument(
        "--list-tools",
        action="store_true",
        help="list the configured MCP servers, their state and their tools, and exit",
    )
    parser.add_argument(
        "--approve-tools",
        metavar="NAME,...",
        help="headless: let calls of these tools run (any other call is refused, and says so)",
    )
    parser.add_argument("--approve-all-tools", action="store_true", help="headless: let every tool call run")
    library.add_argument("--conversation", metavar="ID|last", help="open a saved conversation (headless: continue it)")
    library.add_argument("--export", metavar="ID|last", help="export a conversation and exit")
    library.add_argument(
        "--format",
        choices=("json", "md", "tf-chat"),
        default="json",
        help="export format: chatui JSON (default), Markdown, or the JSON transformers chat's !save writes",
    )
    library.add_argument("-o", "--output", metavar="FILE", help="export to FILE instead of stdout")
    library.add_argument(
        "--import",
        dest="import_file",
        metavar="FILE",
        help="import a conversation file (chatui JSON or Markdown, transformers chat JSON, "
        "OpenAI-style messages) and print its new id",
    )
    models = parser.add_argument_group("models")
    models.add_argument(
        "--models",
        action="store_true",
        help="list the models chatui can load (HF cache, used before, config.toml, bundled, server) "
        "with their size and what they need here, and exit",
    )
    models.add_argument("--json", action="store_true", help="with --models: one JSON list")
    models.add_argument(
        "--doctor",
        action="store_true",
        help="print this machine (CPU features, GPU, memory bandwidth) and the dtype and quantization "
        "chatui would pick, and why; then exit",
    )
    models.add_argument(
        "--download",
        metavar="ID",
        help="download a Hub model into the Hugging Face cache (resumable) and exit",
    )
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
        file_settings = load_generation_file(ns.generation_config, keep=SPECS_BY_NAME) if ns.generation_config else {}
        overrides = parse_key_values(words)
        generation = GenerationSettings().with_updates(file_settings).with_updates(overrides)
    except (SettingsError, GenerationConfigError) as exc:
        parser.error(str(exc))
    given = {"model": model, **{name: getattr(ns, name) for name in LOAD_FIELDS if name != "model"}}
    load_overrides = {name: value for name, value in given.items() if value is not None}
    if ns.trust_remote_code:
        load_overrides["trust_remote_code"] = True
    if ns.allow_pickle:
        load_overrides["allow_pickle"] = True
    if (ns.logprobs is None) != (ns.logprobs_file is None):
        parser.error("--logprobs N and --logprobs-file PATH go together")
    if ns.logprobs is not None and not 1 <= ns.logprobs <= MAX_LOGPROBS:
        parser.error(f"--logprobs: give a number from 1 to {MAX_LOGPROBS}, got {ns.logprobs}")
    if ns.attachments and not ns.prompt:
        parser.error("--image and --file attach to the first --prompt (headless); in the app, use /attach PATH")
    if ns.logprobs is not None and not ns.prompt:
        parser.error("--logprobs works with --prompt (headless); in the app, use the token view")
    if ns.json and not ns.models:
        parser.error("--json goes with --models")
    model_command: tuple[str, ...] | None = None
    if ns.models:
        model_command = ("models", "json" if ns.json else "text")
    elif ns.doctor:
        model_command = ("doctor",)
    elif ns.download:
        model_command = ("download", ns.download)
    adapters = [_adapter_argument(parser, value) for value in ns.adapter or []]
    if ns.merge_adapter and not adapters:
        parser.error("--merge-adapter merges the adapter --adapter loads: give one")
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
        attachments=list(ns.attachments or []),
        adapters=adapters,
        merge_adapter=ns.merge_adapter,
        stats=ns.stats,
        list_tools=ns.list_tools,
        approve_tools=tuple(n.strip() for n in (ns.approve_tools or "").split(",") if n.strip()),
        approve_all_tools=ns.approve_all_tools,
        logprobs=ns.logprobs or 0,
        logprobs_file=ns.logprobs_file,
        theme=ns.theme,
        load_overrides=load_overrides,
        generation_overrides=overrides,
        generation_file=file_settings,
        save=not ns.no_save,
        conversation=ns.conversation,
        library_command=command,
        model_command=model_command,
    )


class _Attach(argparse.Action):
    """`--image PATH` / `--file PATH`, kept in command-line order as (path, image only)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values, option_string=None):
        found = list(getattr(namespace, self.dest, None) or [])
        found.append((str(values), option_string == "--image"))
        setattr(namespace, self.dest, found)


def _adapter_argument(parser: argparse.ArgumentParser, value: str) -> tuple[str | None, str]:
    """`--adapter PATH` or `--adapter NAME=PATH` → (name or None, path)."""
    name, sep, path = value.partition("=")
    if not sep or os.path.exists(value) or not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        name, path = "", value
    if not path.strip():
        parser.error(f"--adapter {value!r}: give a folder or Hub id (NAME=PATH to name it)")
    return name or None, path


def run_app(options: Options, config: Config) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Textual would draw into the pipe and wait for keys that never come.
        print(
            "chatui: the app needs a terminal; use --prompt TEXT for turns without one, or "
            "--export ID to print a conversation",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from tui.ui.app import ChatApp  # Textual is imported only when the app runs

    ChatApp(options, config).run()
    return 0


def _run_model_command(options: Options, config: Config) -> int:
    from tui.cli import models

    command = options.model_command or ()
    for error in config.errors:
        print(f"chatui: warning: {error}", file=sys.stderr)
    if command[0] == "models":
        return models.run_models(options.load, config.model_paths, as_json=command[1] == "json")
    if command[0] == "doctor":
        return models.run_doctor(options.load)
    return models.run_download(command[1])


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # The reader went away (`chatui --list | head -1`): not an error. Point stdout at
        # /dev/null so the interpreter's last flush does not raise it again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(argv: Sequence[str]) -> int:
    route_library_logs()  # library warnings go to the log file, never into a reply
    options = parse_args(argv)
    if options.library_command:
        from tui.cli.library import run_library_command

        return run_library_command(options.library_command)
    config = load_config()
    if options.list_tools:
        from tui.cli.tools import run_list_tools

        return run_list_tools(config)
    try:
        options.apply_config(config)
    except SettingsError as exc:  # config.toml and the flags together are not a valid set
        print(f"chatui: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if options.model_command:
        return _run_model_command(options, config)
    if config.api_key:  # the key stays out of the settings (and so of the library and exports)
        os.environ.setdefault(KEY_FROM_CONFIG, config.api_key)
        os.environ[KEY_ENDPOINT] = options.load.endpoint or ""  # and goes to this server only
    if options.prompts:
        from tui.cli.headless import run_headless

        for error in [*config.errors, *options.tool_problems]:
            print(f"chatui: warning: {error}", file=sys.stderr)
        return run_headless(options, stdin=sys.stdin, stdout=sys.stdout, stderr=sys.stderr)
    return run_app(options, config)
