"""Acting on messages: regenerate, edit, continue, versions."""

from __future__ import annotations

import pytest
from fakes import ScriptedEngine
from pilot import booted, message_views, notes, reply_texts, run, send, wait_for


def test_regenerate_replaces_the_reply_and_keeps_the_old_as_a_version(tmp_path):
    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine(["first answer", "second answer"])) as (pilot, app):
            await send(pilot, app, "question")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["first answer"])
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["second answer"])
            views = message_views(app.chat_screen)
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
        async with booted(tmp_path, engine=ScriptedEngine(["one", "two"])) as (pilot, app):
            await send(pilot, app, "original")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["one"])
            await pilot.press("ctrl+g")
            assert app.chat_screen.prompt_input.text == "original"
            await send(pilot, app, "edited")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and reply_texts(app) == ["two"])
            assert [m.content for m in app.chat_screen.messages] == ["edited", "two"]
            user_view = message_views(app.chat_screen)[0]
            assert "version 2/2" in str(user_view.query_one(".message-header").render())

    run(scenario())


def test_continue_extends_a_stopped_reply(tmp_path):
    async def scenario():
        engine = ScriptedEngine(["alpha beta gamma delta " * 50, "and more"], token_delay=0.005)
        async with booted(tmp_path, engine=engine) as (pilot, app):
            await send(pilot, app, "go")
            await wait_for(pilot, lambda: app.chat_screen.replies.live_tokens >= 3)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.settings_panel.ready)
            partial = app.chat_screen.messages[-1].content
            await pilot.press("ctrl+t")
            await wait_for(
                pilot, lambda: app.chat_screen.state == "ready" and app.chat_screen.messages[-1].content != partial
            )
            assert app.chat_screen.messages[-1].content == partial + "and more"
            assert engine.calls[1][0][-1] == {"role": "assistant", "content": partial}
            assert len(app.chat_screen.messages) == 2

    run(scenario())


@pytest.mark.parametrize("how", ["ctrl+r", "/continue", "/regenerate", "ctrl+r on the message"])
def test_a_message_without_a_reply_gets_one(tmp_path, how):
    """After the last reply is deleted (or never came), regenerate and continue answer the last
    user message instead of saying there is no reply."""

    async def scenario():
        engine = ScriptedEngine(["First answer.", "Second answer."])
        async with booted(tmp_path, engine=engine) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, "question")
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app) == ["First answer."])
            chat.session.delete_message(chat.messages[-1])
            await chat.transcript.render()
            assert [m.role for m in chat.messages] == ["user"]
            if how == "ctrl+r on the message":
                message_views(chat)[-1].focus()
                await pilot.press("ctrl+r")
            elif how.startswith("/"):
                await send(pilot, app, how)
            else:
                await pilot.press(how)
            await wait_for(pilot, lambda: chat.state == "ready" and reply_texts(app) == ["Second answer."])
            assert engine.calls[-1][0] == [{"role": "user", "content": "question"}]
            assert not [n for n in notes(app) if "no reply" in n]

    run(scenario())


def test_typing_on_a_focused_message_goes_to_the_prompt_and_runs_nothing(tmp_path):
    """With a reply focused, typing "story" used to run r (regenerate), d (delete)...: now the
    text goes to the prompt, and message actions use keys that cannot be typing."""

    async def scenario():
        engine = ScriptedEngine(["An answer about a story."])
        async with booted(tmp_path, engine=engine) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, "question")
            await wait_for(pilot, lambda: chat.state == "ready" and len(reply_texts(app)) == 1)
            reply_view = message_views(chat)[-1]
            reply_view.focus()
            await pilot.press(*"story edit", "d", "c", "e", "r")
            assert chat.prompt_input.text == "story editdcer" and chat.prompt_input.has_focus
            assert len(engine.calls) == 1 and len(chat.messages) == 2  # nothing regenerated or deleted
            reply_view.focus()
            await pilot.press("ctrl+c")
            assert app.clipboard == "An answer about a story."
            await pilot.press("delete")
            await wait_for(pilot, lambda: app.screen is not chat)
            await pilot.press("y")
            await wait_for(pilot, lambda: [m.role for m in chat.messages] == ["user"])
            await wait_for(pilot, lambda: chat.prompt_input.has_focus, 5)  # the deleted message had it
            chat.prompt_input.clear()
            await pilot.press(*"after")
            assert chat.prompt_input.text == "after"  # typing after a delete is not lost

    run(scenario())
