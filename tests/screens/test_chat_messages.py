"""Acting on messages: regenerate, edit, continue, versions."""

from __future__ import annotations

from fakes import ScriptedEngine
from pilot import make_app, reply_texts, run, send, wait_for


def test_regenerate_replaces_the_reply_and_keeps_the_old_as_a_version(tmp_path):
    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine(["first answer", "second answer"]))
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.sidebar is not None)
            await send(pilot, app, "question")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["first answer"])
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["second answer"])
            views = app.chat_screen.chat.messages()
            assert [v.text for v in views] == ["question", "second answer"]
            assert "version 2/2" in str(views[1].query_one(".message-header").render())
            # The regenerated prompt did not include the old reply.
            assert app.engine.calls[1][0] == [{"role": "user", "content": "question"}]
            views[1].focus()
            await pilot.press("left")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["first answer"])
            await pilot.press("right")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["second answer"])

    run(scenario())


def test_edit_last_message_sends_a_new_version(tmp_path):
    async def scenario():
        app = make_app(tmp_path, engine=ScriptedEngine(["one", "two"]))
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.sidebar is not None)
            await send(pilot, app, "original")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["one"])
            await pilot.press("ctrl+g")
            assert app.chat_screen.prompt_input.text == "original"
            await send(pilot, app, "edited")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["two"])
            assert [m.content for m in app.chat_screen.messages] == ["edited", "two"]
            user_view = app.chat_screen.chat.messages()[0]
            assert "version 2/2" in str(user_view.query_one(".message-header").render())

    run(scenario())


def test_continue_extends_a_stopped_reply(tmp_path):
    async def scenario():
        engine = ScriptedEngine(["alpha beta gamma delta " * 50, "and more"], token_delay=0.005)
        app = make_app(tmp_path, engine=engine)
        async with app.run_test() as pilot:
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.sidebar is not None)
            await send(pilot, app, "go")
            await wait_for(pilot, lambda: app.chat_screen._live_tokens >= 3)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.sidebar is not None)
            partial = app.chat_screen.messages[-1].content
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.messages[-1].content != partial)
            assert app.chat_screen.messages[-1].content == partial + "and more"
            assert engine.calls[1][0][-1] == {"role": "assistant", "content": partial}
            assert len(app.chat_screen.messages) == 2

    run(scenario())
