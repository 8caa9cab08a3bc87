"""chatui's own log records (the "tui" loggers: what went wrong and was handled) and library
warnings go to a log file, not the terminal: a normal run prints none (they land in
the middle of a streamed reply, or under the app's screen). The file is chatui.log in the
platformdirs log dir (~/.local/state/chatui/log on Linux).

`route_library_logs()` runs first thing on the command line. transformers adds a handler of its
own that prints to stderr when it is imported; `quiet_transformers()` removes it, and is called
right after transformers is imported (on the torch thread, or where a setting is validated).
Library use and the tests leave logging alone: nothing is routed unless asked.
"""

from __future__ import annotations

import logging
from pathlib import Path

import platformdirs

LIBRARIES = (
    "transformers",
    "huggingface_hub",
    "torch",
    "torchao",
    "accelerate",
    "bitsandbytes",
    "peft",
    "kernels",  # transformers' hub kernels: "Skipping publisher trust check ..." when offline
    "py.warnings",
)
CHATUI = "tui"  # the package's loggers: logging.getLogger(__name__) in every module that logs
_handler: logging.Handler | None = None


def log_file() -> Path:
    return Path(platformdirs.user_log_dir("chatui", appauthor=False)) / "chatui.log"


def route_library_logs() -> Path | None:
    """Send the libraries' log records and Python warnings to the log file; returns its path
    (None when it cannot be written: the libraries then log as they do by default)."""
    global _handler
    path = log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(True)
    for name in (CHATUI, *LIBRARIES):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
    logging.getLogger(CHATUI).setLevel(logging.INFO)
    _handler = handler
    # huggingface_hub puts a stderr handler on its logger when first imported: its download
    # retries ("Trying to resume download...") would reach the terminal, or the app's screen
    import huggingface_hub.utils.logging  # noqa: F401  (adds that handler now, to be taken away)

    _only_the_file(logging.getLogger("huggingface_hub"))
    return path


def _only_the_file(logger: logging.Logger) -> None:
    """The logger writes to chatui's log file alone: its own handlers (stderr) are taken away."""
    for handler in list(logger.handlers):
        if handler is not _handler:
            logger.removeHandler(handler)
    if _handler is not None and _handler not in logger.handlers:
        logger.addHandler(_handler)
    logger.propagate = False


def quiet_transformers() -> None:
    """Take away transformers' own stderr handler, and torch's (torch._logging adds one to the
    "torch" logger when torch is imported; torchao's import warns through it), once logs are
    routed to the file."""
    if _handler is None:
        return
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_default_handler()
    _only_the_file(logging.getLogger("torch"))
