"""LoRA adapters in the app: `--adapter`, `/adapter load|use|unload`, the status bar, a reply's
stats line, and a bad adapter as one line that changes nothing (the real engine, tiny model)."""

from __future__ import annotations

import shutil

import pytest
from pilot import booted, notes, run, send, wait_for
from textual.widgets import Button, Input

from tui.engine import Engine, Finished, SettingsError
from tui.ui.screens.compare import CompareScreen


def test_adapters_in_the_app(tmp_path, tiny_model_dir, tiny_adapters):
    async def scenario():
        async with booted(
            tmp_path,
            str(tiny_model_dir),
            "max_new_tokens=4",
            "--adapter",
            f"tone={tiny_adapters['tone']}",
            engine=Engine(),
            size=(130, 50),
            timeout=120,
        ) as (pilot, app):
            screen = app.chat_screen

            def sidebar_button(name: str) -> Button:
                return next(b for b in screen.settings_panel.adapter_list.query(Button) if b.name == name)

            await wait_for(pilot, lambda: screen.status.info.adapter == "tone" or notes(app), 120, what="--adapter")
            assert screen.status.info.adapter == "tone", notes(app)
            await send(pilot, app, "Hi")
            await wait_for(pilot, lambda: any(m.role == "assistant" and m.meta.metrics for m in screen.messages))
            reply = next(m for m in screen.messages if m.role == "assistant")
            assert [a.name for a in reply.meta.adapters] == ["tone"]
            await wait_for(pilot, lambda: screen.transcript.views[reply.id]._stats.endswith(" · adapter tone"))

            await send(pilot, app, f"/adapter load {tiny_adapters['style']} s")
            await wait_for(pilot, lambda: screen.status.info.adapter == "s", what="the second adapter")
            assert screen.settings_panel.adapter_list.state.names == ("tone", "s")
            await send(pilot, app, "/adapter use tone=0.5,s=0.5")
            await wait_for(pilot, lambda: screen.status.info.adapter == "tone×0.5+s×0.5", what="the mix")
            await send(pilot, app, "/adapter use none")
            await wait_for(pilot, lambda: screen.status.info.adapter == "none", what="none")
            # the sidebar: a row's button uses that adapter alone, "none" the base model
            sidebar_button("use:tone").press()
            await wait_for(pilot, lambda: screen.status.info.adapter == "tone", what="the sidebar's tone")
            await wait_for(pilot, lambda: str(sidebar_button("use:tone").label).startswith("●"))
            sidebar_button("use:none").press()
            await wait_for(pilot, lambda: screen.status.info.adapter == "none", what="the sidebar's none")
            # the sidebar's mix field starts as the loaded adapters in equal parts; Mix uses what it says
            adapters = screen.settings_panel.adapter_list
            mix = adapters.query_one("#adapter-mix", Input)
            assert mix.value == "tone=0.5,s=0.5"
            mix.value = "tone=0.7,s=0.3"
            mix.focus()
            await pilot.press("enter")  # Enter in the field, as its button
            await wait_for(pilot, lambda: screen.status.info.adapter == "tone×0.7+s×0.3", what="the sidebar's mix")
            assert screen.engine.adapters.state.active == (("tone", 0.7), ("s", 0.3))
            mix.value = "tone=lots"
            adapters.query_one("#adapter-use-mix", Button).press()
            await wait_for(pilot, lambda: "adapter tone: weight 'lots' is not a number" in notes(app))
            assert screen.status.info.adapter == "tone×0.7+s×0.3"  # unchanged
            sidebar_button("use:none").press()
            await wait_for(pilot, lambda: screen.status.info.adapter == "none")

            # /compare: base vs tone vs s on the same prompt and seed; the adapters in use come back after.
            with pytest.raises(SettingsError, match="adapter:nope: no adapter named nope is loaded"):
                screen.lab.compare_columns("adapter:none adapter:nope")
            screen.action_compare("adapter:none adapter:tone adapter:s")
            await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
            compare = app.screen
            await wait_for(pilot, lambda: all(isinstance(c.final, Finished) for c in compare.columns), 60)
            base, tone, style = compare.columns
            assert [c.final.adapters for c in compare.columns][0] == ()
            assert [a.name for a in tone.final.adapters] == ["tone"] and style.final.adapters[0].name == "s"
            assert len({base.text, tone.text, style.text}) == 3 and "perplexity" in tone.stats()
            await pilot.press("2")
            await wait_for(pilot, lambda: not isinstance(app.screen, CompareScreen))
            await wait_for(pilot, lambda: screen.messages[-1].meta.adapters == tone.final.adapters)
            assert screen.engine.adapters.state.active == ()  # none, as before the comparison

            await send(pilot, app, f"/adapter load {tmp_path / 'nowhere'}")
            await wait_for(pilot, lambda: f"adapter not found: {tmp_path / 'nowhere'}" in notes(app))
            assert screen.engine.adapters.state.names == ("tone", "s")

            await send(pilot, app, "/adapter unload tone")
            await wait_for(pilot, lambda: screen.engine.adapters.state.names == ("s",))
            sidebar_button("unload:s").press()
            await wait_for(pilot, lambda: screen.status.info.adapter == "", what="no adapters")
            await send(pilot, app, "/adapter wat")
            await wait_for(pilot, lambda: any(n.startswith("/adapter: /adapter load PATH") for n in notes(app)))

            # Reopening the chat, made with "tone", offers it; the model's key loads it, without a reload,
            # in place of another adapter loaded under that name.
            await send(pilot, app, f"/adapter load {tiny_adapters['style']} tone")
            await wait_for(pilot, lambda: screen.engine.adapters.state.names == ("tone",))
            model = screen.engine._loaded.model
            await screen.files.open_conversation(screen.session.conversation.id)
            offer = (
                f"This chat's last reply was made with adapter tone ({tiny_adapters['tone']}). Press f12 to load it."
            )
            assert offer in notes(app)
            await pilot.press("f12")
            recorded = reply.meta.adapters[0].sha256
            await wait_for(
                pilot,
                lambda: getattr(screen.engine.adapters.state.get("tone"), "sha256", None) == recorded,
                what="the chat's adapter",
            )
            assert screen.status.info.adapter == "tone" and screen.engine.adapters.state.names == ("tone",)
            assert screen.engine._loaded.model is model and not screen.adapters.saved

            # A reload (another dtype) brings the adapters back on the new model, the same one in use.
            model = screen.engine._loaded.model
            screen.loader.reload(screen.loader.load_settings.replace(dtype="bfloat16"))
            await wait_for(
                pilot, lambda: screen.engine._loaded is not None and screen.engine._loaded.model is not model
            )
            await wait_for(pilot, lambda: screen.state == "ready" and screen.status.info.adapter == "tone")
            assert screen.engine.adapters.state.names == ("tone",) and screen.engine.info.dtype == "bfloat16"

            # Another model does not get them: they were made for the one they were loaded on.
            other = tmp_path / "another-model"
            shutil.copytree(tiny_model_dir, other)
            model = screen.engine._loaded.model
            screen.loader.reload(screen.loader.load_settings.replace(model=str(other)))
            await wait_for(pilot, lambda: screen.state == "ready" and screen.engine._loaded.model is not model)
            assert screen.engine.adapters.state.names == () and screen.status.info.adapter == ""
            assert any("Adapters tone stay behind with the model" in n for n in notes(app))

    run(scenario())
