"""The prompt as a terminal drives it: keys that arrive in one burst (a fast typist, keys a
program sends) are handled in order, so Enter sends everything typed before it."""

from __future__ import annotations

from fakes import ScriptedEngine
from pilot import make_app, post_key, reply_texts, run, wait_for


def test_enter_in_a_burst_of_keys_sends_all_that_was_typed_before_it(tmp_path):
    async def scenario():
        engine = ScriptedEngine(["Paris."])
        app = make_app(tmp_path, engine=engine)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.chat_screen.state == "ready")
            for char in "What is it?":
                post_key(app, "space" if char == " " else char, char)
            post_key(app, "enter")
            await wait_for(pilot, lambda: reply_texts(app) == ["Paris."])
            assert engine.calls[0][0][-1] == {"role": "user", "content": "What is it?"}
            assert app.chat_screen.prompt_input.text == ""

    run(scenario())


def test_a_new_line_in_a_burst_lands_where_it_was_typed(tmp_path):
    async def scenario():
        app = make_app(tmp_path)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.chat_screen.state == "ready")
            for char in "ab":
                post_key(app, char, char)
            post_key(app, "ctrl+j")
            post_key(app, "c", "c")
            await wait_for(pilot, lambda: app.chat_screen.prompt_input.text == "ab\nc")

    run(scenario())
