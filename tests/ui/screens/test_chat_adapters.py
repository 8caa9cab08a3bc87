"""LoRA adapters in the app: `--adapter`, `/adapter load|use|unload`, the status bar, a reply's
stats line, and a bad adapter as one line that changes nothing (the real engine, tiny model)."""

from __future__ import annotations

from pilot import booted, notes, run, send, wait_for

from tui.engine import Engine


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
            await wait_for(pilot, lambda: screen.status.info.adapter == "tone", what="--adapter")
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

            await send(pilot, app, f"/adapter load {tmp_path / 'nowhere'}")
            await wait_for(pilot, lambda: f"adapter not found: {tmp_path / 'nowhere'}" in notes(app))
            assert screen.engine.adapters.state.names == ("tone", "s")

            await send(pilot, app, "/adapter unload tone")
            await send(pilot, app, "/adapter unload s")
            await wait_for(pilot, lambda: screen.status.info.adapter == "", what="no adapters")
            await send(pilot, app, "/adapter wat")
            await wait_for(pilot, lambda: any(n.startswith("/adapter: /adapter load PATH") for n in notes(app)))

    run(scenario())
