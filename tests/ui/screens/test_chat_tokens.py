"""The token view in the app: recording switched on, a reply looked at token by token, and a new
version of it written from an alternative token."""

from __future__ import annotations

from pilot import booted, reply_texts, run, send, wait_for

from tui import token_probs
from tui.engine import Engine
from tui.ui.screens.token_view import TokenViewScreen, band_colour


def test_probabilities_are_recorded_shown_and_a_branch_writes_a_new_version(tmp_path, tiny_model_dir):
    async def scenario():
        async with booted(
            tmp_path,
            str(tiny_model_dir),
            "do_sample=false",
            "max_new_tokens=8",
            engine=Engine(),
            size=(120, 40),
            timeout=120,
        ) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, "hello")
            await wait_for(pilot, lambda: chat.state == "ready" and len(reply_texts(app)) == 1, 60)
            assert token_probs.of_message(chat.messages[-1].meta) == []  # off by default
            await pilot.press("f5")
            await pilot.pause()
            assert not isinstance(app.screen, TokenViewScreen)  # nothing to show: it says how to record

            await pilot.press("f4")
            assert "token probs" in chat.status.info.render()
            await chat.action_regenerate()
            await wait_for(pilot, lambda: chat.state == "ready" and token_probs.of_message(chat.messages[-1].meta), 60)
            original = chat.messages[-1]
            choices = token_probs.of_message(original.meta)
            assert len(choices) == 8 and all(c.top[0].id == c.id for c in choices)  # greedy

            await pilot.press("f5")
            await wait_for(pilot, lambda: isinstance(app.screen, TokenViewScreen))
            view = app.screen
            await pilot.press("right", "right")
            assert view.cursor == 2
            detail = str(view.query_one("#token-detail").render())
            assert "token 3 of 8" in detail
            before = str(view.query_one("#token-before").render())
            assert choices[2].top_raw[1].token.strip()[:5] in before
            await pilot.press("2")  # the model's second choice at token 3
            await wait_for(pilot, lambda: chat.state == "ready" and chat.messages[-1].id != original.id, 60)
            branched = chat.messages[-1]
            new_choices = token_probs.of_message(branched.meta)
            assert [c.id for c in new_choices[:2]] == [c.id for c in choices[:2]]
            assert new_choices[2].id == choices[2].top_raw[1].id != choices[2].id
            assert len(new_choices) == 3 + 8  # the kept tokens, the one picked, and 8 new
            assert chat.session.version_label(branched) == "version 3/3"  # beside the other two
            assert branched.parent_id == original.parent_id

    run(scenario())


def test_colours_follow_probability_bands():
    assert band_colour(0.95) is None and band_colour(0.6) == "success"
    assert band_colour(0.3) == "warning" and band_colour(0.01) == "error"


def test_compare_answers_the_last_prompt_under_each_setting_with_one_seed_and_keeps_one(tmp_path, tiny_model_dir):
    import pytest

    from tui.engine import Finished, SettingsError
    from tui.ui.screens.compare import CompareScreen

    async def scenario():
        async with booted(
            tmp_path, str(tiny_model_dir), "max_new_tokens=6", engine=Engine(), size=(120, 40), timeout=120
        ) as (pilot, app):
            chat = app.chat_screen
            await send(pilot, app, "hello")
            await wait_for(pilot, lambda: chat.state == "ready" and len(reply_texts(app)) == 1, 60)
            with pytest.raises(SettingsError, match="is not current, a preset"):
                chat.lab.compare_columns("current nonsense")
            with pytest.raises(SettingsError, match="compare 2 to 4"):
                chat.lab.compare_columns("current")

            chat.action_compare("current do_sample=false,max_new_tokens=4 creative prompt_lookup_num_tokens=10")
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
            screen = app.screen
            await wait_for(pilot, lambda: all(isinstance(c.final, Finished) for c in screen.columns), 60)
            columns = screen.columns
            assert [c.name for c in columns] == [
                "current",
                "do_sample=false,max_new_tokens=4",
                "creative",
                "prompt_lookup_num_tokens=10",
            ]
            seeds = {c.settings.seed for c in columns}
            assert len(seeds) == 1 and None not in seeds  # sampling: one seed for every column
            assert [c.final.metrics.new_tokens for c in columns] == [6, 4, 6, 6]
            assert all(len(c.logprobs) == c.final.metrics.new_tokens for c in columns[:3])
            assert columns[3].logprobs == []  # recording would have turned that column's prompt lookup off
            await pilot.pause()
            assert "perplexity" in str(screen.query_one("#compare-stats-1").render())
            assert "no perplexity with prompt lookup" in str(screen.query_one("#compare-stats-3").render())
            kept_text = columns[1].text
            await pilot.press("2")
            await wait_for(
                pilot, lambda: not isinstance(app.screen, CompareScreen) and reply_texts(app)[-1] == kept_text
            )
            assert chat.session.version_label(chat.messages[-1]) == "version 2/2"
            assert len([m for m in chat.messages if m.role == "user"]) == 1

    run(scenario())


def test_alternative_rows_fit_their_column_and_mark_what_the_filters_removed():
    from tui.engine.events import Alternative, TokenChoice
    from tui.ui.screens.token_view import alternative_rows

    top_raw = (Alternative(1, " Paris", -0.1), Alternative(2, " a-very-long-token-indeed", -2.5, kept=False))
    choice = TokenChoice(1, " Paris", -0.05, -0.1, (Alternative(1, " Paris", -0.05),), top_raw)
    for width in (24, 30, 50, 60):
        lines = alternative_rows(choice, before=True, width=width).plain.splitlines()
        assert len(lines) == 2 and all(len(line) <= width for line in lines), (width, lines)
        assert lines[0].startswith("1 ") and "90.48%" in lines[0]
        assert ("removed" if width >= 44 else "✗") in lines[1]
    after = alternative_rows(choice, before=False, width=50).plain.splitlines()
    assert len(after) == 1 and not after[0].startswith("1")  # digits pick from the model's list only
