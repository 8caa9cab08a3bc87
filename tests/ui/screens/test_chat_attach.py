"""Attachments in the app: /attach (with ~ and relative paths), chips removable before sending,
a pasted path offered, images shown in their message and full size, and one-line refusals that
keep the typed message."""

from __future__ import annotations

from fakes import ScriptedEngine
from images import png
from pilot import booted, make_app, message_views, notes, run, send, wait_for
from textual import events
from textual.widgets import Input
from textual.widgets._footer import FooterKey

from tui.store.parts import FilePart, ImagePart, TextPart
from tui.ui.screens.dialogs import ConfirmScreen
from tui.ui.screens.image_viewer import ImageViewer
from tui.ui.widgets.attachments import AttachmentChips, AttachmentsShown, Chip

RED = png((220, 20, 20))


def chip_labels(app) -> list[str]:
    return app.chat_screen.query_one(AttachmentChips).labels


def test_attach_chips_send_and_view(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "pics").mkdir(parents=True)
    (home / "pics" / "red.png").write_bytes(RED)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.md").write_text("buy zucchini and milk")
    (tmp_path / "extra.txt").write_text("not needed")
    engine = ScriptedEngine(["A red square."], images=True)

    async def scenario():
        async with booted(tmp_path, engine=engine) as (pilot, app):
            screen = app.chat_screen
            await send(pilot, app, "/attach ~/pics/red.png")
            await send(pilot, app, "/attach notes.md")  # relative to where chatui started
            await send(pilot, app, "/attach extra.txt")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 3 and "tokens" in chip_labels(app)[1])
            labels = chip_labels(app)
            assert labels[0].startswith("image: red.png · ") and labels[0].endswith("✕")
            assert labels[1].startswith("file: notes.md · 21 B · ") and "tokens" in labels[1]
            await send(pilot, app, "/detach")  # the last one
            await wait_for(pilot, lambda: len(chip_labels(app)) == 2)
            await send(pilot, app, "What is this?")
            await wait_for(pilot, lambda: screen.state == "ready" and len(screen.messages) == 2, what="the reply")
            assert chip_labels(app) == []
            user = screen.messages[0]
            assert [type(p) for p in user.parts] == [ImagePart, FilePart, TextPart]
            sent = engine.calls[-1][0][-1]["content"]
            assert [part["type"] for part in sent] == ["image", "text", "text"] and sent[0]["data"] == RED
            assert '<file name="notes.md">' in sent[1]["text"]
            shown = message_views(screen)[0].query_one(AttachmentsShown)
            assert len(shown.query(".thumbnail")) == 1
            message_views(screen)[0].focus()
            await pilot.press("f9")
            await wait_for(pilot, lambda: isinstance(app.screen, ImageViewer))
            assert app.screen.image.data == RED
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, ImageViewer))
            await pilot.click(".thumbnail")  # a click on the thumbnail opens it too
            await wait_for(pilot, lambda: isinstance(app.screen, ImageViewer))
            await pilot.press("escape")

    run(scenario())


def test_refusals_are_one_line_and_keep_the_typed_message(tmp_path):
    (tmp_path / "red.png").write_bytes(RED)
    (tmp_path / "broken.png").write_bytes(RED[:50])
    (tmp_path / "long.txt").write_text("word " * 5000)  # the scripted count: a token a word; context 4096
    engine = ScriptedEngine()  # reads text only

    async def scenario():
        async with booted(tmp_path, engine=engine) as (pilot, app):
            screen = app.chat_screen
            await send(pilot, app, f"/attach {tmp_path / 'red.png'}")
            await wait_for(pilot, lambda: any("reads text only" in n for n in notes(app)))
            await send(pilot, app, f"/attach {tmp_path / 'broken.png'}")
            await wait_for(pilot, lambda: any("broken.png is not a readable image" in n for n in notes(app)))
            await send(pilot, app, f"/attach {tmp_path / 'missing.pdf'}")
            await wait_for(pilot, lambda: any("missing.pdf: no such file" in n for n in notes(app)))
            assert chip_labels(app) == []
            await send(pilot, app, f"/attach {tmp_path / 'long.txt'}")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 1)
            await send(pilot, app, "Sum it up")
            await wait_for(pilot, lambda: any("long.txt does not fit" in n for n in notes(app)))
            assert screen.prompt_input.text == "Sum it up" and len(chip_labels(app)) == 1
            assert engine.calls == [] and screen.messages == []  # nothing sent, nothing saved
            assert all("\n" not in n for n in notes(app))

    run(scenario())


def test_a_pasted_file_path_is_offered_as_an_attachment(tmp_path):
    picture = tmp_path / "dropped picture.png"
    picture.write_bytes(RED)
    notes = tmp_path / "notes.md"
    notes.write_text("a note")

    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine(images=True)) as (pilot, app):
            prompt = app.chat_screen.prompt_input
            prompt.focus()
            prompt.post_message(events.Paste(f"'{picture}'"))  # as a terminal pastes a dropped file
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 1)
            assert prompt.text == "" and "dropped picture.png" in chip_labels(app)[0]
            await pilot.click("#chip-0")  # pressing a chip removes it
            await wait_for(pilot, lambda: chip_labels(app) == [])
            prompt.post_message(events.Paste(str(picture)))
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("n")  # declined: the path is pasted as text
            await wait_for(pilot, lambda: prompt.text == str(picture))
            prompt.post_message(events.Paste("just some words"))
            await wait_for(pilot, lambda: prompt.text.endswith("just some words"))
            comment = "/**\n * " + "A long documentation line " * 15 + "\n */"  # no file name is that long
            prompt.post_message(events.Paste(comment))
            await wait_for(pilot, lambda: prompt.text.endswith(comment))
            prompt.clear()
            escaped = str(picture).replace(" ", "\\ ")
            prompt.post_message(events.Paste(f"{escaped} {notes}"))  # two files dropped at once
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 2)
            assert "dropped picture.png" in chip_labels(app)[0] and "notes.md" in chip_labels(app)[1]
            assert prompt.text == ""

    run(scenario())


def test_the_app_answers_an_image_as_transformers_does(tmp_path, tiny_vlm_dir):
    """The real engine on the tiny vision model: the reply to an image sent from the app is the
    greedy reply plain `model.generate` writes."""
    from engine.test_vision import reference_reply
    from images import image_message

    from tui.engine import Engine

    blue = png((20, 20, 220))
    (tmp_path / "blue.png").write_bytes(blue)

    async def scenario():
        args = (str(tiny_vlm_dir), "--dtype", "float32", "do_sample=false", "max_new_tokens=10")
        async with booted(tmp_path, *args, engine=Engine()) as (pilot, app):
            screen = app.chat_screen
            await send(pilot, app, f"/attach {tmp_path / 'blue.png'}")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 1)
            await send(pilot, app, "What is in this picture?")
            await wait_for(pilot, lambda: screen.state == "ready" and len(screen.messages) == 2, 120, "the reply")
            return screen.messages[1].content

    reply = run(scenario())
    assert reply == reference_reply(tiny_vlm_dir, [image_message(blue, "What is in this picture?", "blue.png")], 10)


def test_a_bare_attach_opens_a_file_picker_in_the_last_folder_used(tmp_path, monkeypatch):
    from textual_fspicker import FileOpen
    from textual_fspicker.parts import DirectoryNavigation

    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "red.png").write_bytes(RED)
    (pics / "notes.md").write_text("pick me")
    monkeypatch.chdir(tmp_path)

    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine(images=True)) as (pilot, app):
            await send(pilot, app, "/attach pics/red.png")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 1)
            await send(pilot, app, "/attach")  # no path: the picker, in pics/ (the last folder used)
            await wait_for(pilot, lambda: isinstance(app.screen, FileOpen), what="the file picker")
            picker = app.screen
            assert picker.query_one(DirectoryNavigation).location == pics
            picker.query_one(Input).focus()
            picker.query_one(Input).value = "notes.md"
            await pilot.press("enter")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 2, what="the picked file's chip")
            assert chip_labels(app)[1].startswith("file: notes.md")
            await send(pilot, app, "/attach")
            await wait_for(pilot, lambda: isinstance(app.screen, FileOpen))
            await pilot.press("escape")  # cancelled: nothing more attached, the chat as it was
            await wait_for(pilot, lambda: not isinstance(app.screen, FileOpen))
            assert len(chip_labels(app)) == 2

    run(scenario())


def test_attachments_wait_for_the_model_and_are_checked_against_it(tmp_path):
    """Sent while the model loads, a message with an image is not queued (a text-only model would
    be given it by name): it stays in the prompt with its chips, and once the model is there the
    check runs: this one reads text only."""
    (tmp_path / "red.png").write_bytes(RED)
    engine = ScriptedEngine(hold_load=True)  # reads text only

    async def scenario():
        app = make_app(tmp_path, engine=engine)
        async with app.run_test() as pilot:
            screen = app.chat_screen
            await send(pilot, app, f"/attach {tmp_path / 'red.png'}")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 1)
            await send(pilot, app, "What is this?")
            await wait_for(pilot, lambda: any("still loading" in n for n in notes(app)))
            assert screen.prompt_input.text == "What is this?" and len(chip_labels(app)) == 1
            assert screen.messages == [] and not screen.replies.pending_send
            engine.hold_load = False
            screen.loader.load(screen.loader.load_settings)
            await wait_for(pilot, lambda: screen.state == "ready")
            await pilot.press("enter")
            await wait_for(pilot, lambda: any("reads text only" in n for n in notes(app)))
            assert engine.calls == [] and screen.messages == [] and screen.prompt_input.text == "What is this?"

    run(scenario())


def test_every_chip_can_be_seen_and_removed_at_60x20(tmp_path):
    """Five attachments at 60 columns: a chip a line, none cut off; what does not fit scrolls."""
    for n in range(5):
        (tmp_path / f"notes-{n}-with-a-longer-name.md").write_text(f"note {n}")

    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine(), size=(60, 20)) as (pilot, app):
            for n in range(5):
                await send(pilot, app, f"/attach {tmp_path / f'notes-{n}-with-a-longer-name.md'}")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 5)
            await pilot.pause()
            chips = app.chat_screen.query_one(AttachmentChips)
            for chip in chips.query(Chip):
                chip.scroll_visible(animate=False, immediate=True)
                await pilot.pause()
                assert chips.region.contains_region(chip.region) and chip.region.width >= 30
            await pilot.click("#chip-4")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 4)

    run(scenario())


def test_an_edit_shows_its_attachments_as_chips_to_keep_or_remove(tmp_path):
    (tmp_path / "red.png").write_bytes(RED)
    (tmp_path / "notes.md").write_text("a note")
    engine = ScriptedEngine(["A red square.", "Words only."], images=True)

    async def scenario():
        async with booted(tmp_path, engine=engine) as (pilot, app):
            screen = app.chat_screen
            await send(pilot, app, f"/attach {tmp_path / 'red.png'}")
            await send(pilot, app, "What is this?")
            await wait_for(pilot, lambda: screen.state == "ready" and len(screen.messages) == 2)
            await send(pilot, app, f"/attach {tmp_path / 'notes.md'}")  # a draft with a chip, not sent
            await wait_for(pilot, lambda: len(chip_labels(app)) == 1)
            screen.prompt_input.load_text("a draft")
            await pilot.press("ctrl+g")  # edit the last message: its image comes back as a chip
            await wait_for(pilot, lambda: chip_labels(app)[0].startswith("image: red.png") and screen.editing)
            assert screen.prompt_input.text == "What is this?" and len(chip_labels(app)) == 1
            await wait_for(pilot, lambda: "Cancel edit" in [key.description for key in screen.query(FooterKey)])
            await pilot.press("escape")  # cancelled: the draft and its chip come back
            await wait_for(pilot, lambda: screen.prompt_input.text == "a draft" and screen.editing is None)
            await wait_for(pilot, lambda: len(chip_labels(app)) == 1 and "notes.md" in chip_labels(app)[0])
            await pilot.press("ctrl+g")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 1)
            await pilot.click("#chip-0")  # removed from the new version
            await wait_for(pilot, lambda: chip_labels(app) == [])
            screen.prompt_input.load_text("Describe it in words")
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.state == "ready" and len(engine.calls) == 2)
            await wait_for(pilot, lambda: screen.prompt_input.text == "a draft")  # the draft is back after it
            assert "notes.md" in chip_labels(app)[0]
            assert [type(p) for p in screen.messages[0].parts] == [TextPart]
            assert engine.calls[-1][0][-1] == {"role": "user", "content": "Describe it in words"}
            versions = screen.session.saver.versions(screen.messages[0].id)
            assert [type(p) for p in versions[0].parts] == [ImagePart, TextPart]  # the first keeps it

    run(scenario())


def test_the_viewer_steps_through_the_messages_images(tmp_path):
    blue = png((20, 20, 220))
    (tmp_path / "red.png").write_bytes(RED)
    (tmp_path / "blue.png").write_bytes(blue)

    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine(["Two squares."], images=True)) as (pilot, app):
            screen = app.chat_screen
            await send(pilot, app, f"/attach {tmp_path / 'red.png'}")
            await send(pilot, app, f"/attach {tmp_path / 'blue.png'}")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 2)
            await send(pilot, app, "And these?")
            await wait_for(pilot, lambda: screen.state == "ready" and len(screen.messages) == 2)
            message_views(screen)[0].focus()
            await pilot.press("f9")
            await wait_for(pilot, lambda: isinstance(app.screen, ImageViewer))
            viewer = app.screen
            assert viewer.image.data == RED and "1 of 2" in str(viewer.query_one("#viewer-caption").render())
            await pilot.press("right")
            await wait_for(pilot, lambda: viewer.image.data == blue and viewer.query("#viewer-caption"))
            assert "2 of 2" in str(viewer.query_one("#viewer-caption").render())
            await pilot.press("right")  # round to the first
            await wait_for(pilot, lambda: viewer.image.data == RED)
            await pilot.press("escape")

    run(scenario())


def test_reopening_an_image_chat_with_a_text_model_says_it_sees_names_only(tmp_path):
    from dataclasses import replace

    (tmp_path / "red.png").write_bytes(RED)
    engine = ScriptedEngine(["A red square."], images=True)

    async def scenario():
        async with booted(tmp_path, engine=engine) as (pilot, app):
            screen = app.chat_screen
            await send(pilot, app, f"/attach {tmp_path / 'red.png'}")
            await send(pilot, app, "What is this?")
            await wait_for(pilot, lambda: screen.state == "ready" and len(screen.messages) == 2)
            assert not any("reads text only" in n for n in notes(app))
            engine.capabilities = replace(engine.capabilities, images=False)  # now a text-only model
            await screen.files.open_conversation(screen.session.conversation.id)
            await wait_for(pilot, lambda: any("This chat has 1 image; " in n for n in notes(app)))
            await screen.files.open_conversation(screen.session.conversation.id)  # said once
            await pilot.pause()
            assert sum("This chat has 1 image" in n for n in notes(app)) == 1

    run(scenario())


def test_the_picker_opens_next_run_in_the_folder_last_used(tmp_path, monkeypatch):
    from tui.ui.screens.chat_attach import remembered_folder

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "red.png").write_bytes(RED)
    assert remembered_folder() == tmp_path  # nothing remembered yet: where chatui started

    async def scenario():
        async with booted(tmp_path, engine=ScriptedEngine(images=True)) as (pilot, app):
            await send(pilot, app, "/attach pics/red.png")
            await wait_for(pilot, lambda: len(chip_labels(app)) == 1)

    run(scenario())
    assert remembered_folder() == pics  # what the next run's picker opens in
    pics.rename(tmp_path / "gone")
    assert remembered_folder() == tmp_path
