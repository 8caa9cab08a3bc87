"""A target for tests/test_app.py to SIGKILL: the real ChatApp, headless (run_test), on a
slow ScriptedEngine, saving to the library at argv[1]. It sends one message, waits for the reply
to finish, sends a second one, prints STREAMING once that reply is streaming, then prints
`TOKENS n` (the reply's tokens on screen) every 0.1 s until it is killed. Every line it prints is
flushed at once (the test reads them from a pipe).

usage: app_kill_target.py LIBRARY_PATH CONFIG_PATH
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for fakes

from fakes import ScriptedEngine  # noqa: E402

from tui.cli.main import parse_args  # noqa: E402
from tui.store import AutoSaver, Library  # noqa: E402
from tui.store.config import Config  # noqa: E402
from tui.ui.app import ChatApp  # noqa: E402

FIRST_REPLY = "The first reply, complete: " + " ".join(f"word{i}" for i in range(40))
SECOND_REPLY = " ".join(f"second{i}" for i in range(5000))  # ~50 s at 10 ms a token: never ends


async def wait_for(pilot, condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            print("TIMEOUT", flush=True)
            raise SystemExit(3)
        await asyncio.sleep(0.02)  # not pilot.pause: see tests/pilot.py's wait_for


async def main(library_path: Path, config_path: Path) -> None:
    engine = ScriptedEngine([FIRST_REPLY, SECOND_REPLY], token_delay=0.01)
    app = ChatApp(parse_args([]), Config(path=config_path), engine=engine, saver=AutoSaver(Library(library_path)))
    async with app.run_test() as pilot:
        chat = app.chat_screen
        await wait_for(pilot, lambda: chat.state == "ready")
        for text, replies in (("first question", 1), ("second question", None)):
            chat.prompt_input.load_text(text)
            chat.prompt_input.focus()
            await pilot.press("enter")
            if replies is not None:
                await wait_for(
                    pilot,
                    lambda: chat.state == "ready" and sum(m.role == "assistant" for m in chat.messages) == replies,
                )
                print("FIRST-DONE", app.saver.conversation.id, flush=True)
        await wait_for(pilot, lambda: chat.state == "generating" and chat.replies.live_tokens >= 5)
        print("STREAMING", app.saver.conversation.id, flush=True)
        for _ in range(1200):  # the test kills us long before this
            print("TOKENS", chat.replies.live_tokens, flush=True)
            await asyncio.sleep(0.1)
        print("NOT-KILLED", flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
