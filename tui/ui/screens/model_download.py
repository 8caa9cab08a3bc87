"""Downloading a Hub model from the picker: its files listed with their sizes first, then, once
the user says so, a progress bar per file and one overall (huggingface_hub's own download,
`engine/downloads.py`, on a thread). Escape cancels and keeps what came: the next download of
the same model resumes. A gated or private repo asks for a token and stores it where
huggingface_hub does. Dismissed with what to load once it is all in the cache (the Hub id, or
a GGUF-only repo's file), else None."""

from __future__ import annotations

import threading
import time

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from tui.engine.downloads import (
    DownloadError,
    DownloadPlan,
    DownloadProgress,
    TokenRequired,
    download,
    hub_offline,
    loadable,
    plan_download,
    save_token,
)
from tui.engine.hub_cache import HubCacheError, cached_models
from tui.text import inert
from tui.ui.actions import Keymap, bindings
from tui.ui.screens.dialogs import TextPromptScreen
from tui.ui.screens.modal import Modal

FRAME_S = 0.1  # progress is drawn at most this often


def _mib(count: int) -> str:
    return f"{count / 2**20:.1f} MiB"


class ModelDownloadScreen(Modal[str | None]):
    """Needs an app with `keymap` (tui.ui.actions.Keymap)."""

    BINDINGS = bindings("download")
    AUTO_FOCUS = None

    def __init__(self, repo_id: str) -> None:
        super().__init__()
        self.repo_id = repo_id
        self.plan: DownloadPlan | None = None
        self.cancel = threading.Event()
        self.running = False
        self._drawn = 0.0

    def compose_dialog(self) -> ComposeResult:
        keymap = Keymap.of(self.app)
        with Vertical(id="download", classes="dialog"):
            yield Static(f"Download {inert(self.repo_id)}", classes="section-title", markup=False)
            yield Static("asking the Hub for its files…", id="download-files", markup=False)
            yield Static("", id="download-file", markup=False)
            yield ProgressBar(id="download-file-bar", show_eta=False)
            yield Static("overall", id="download-overall", markup=False)
            yield ProgressBar(id="download-bar", show_eta=True)
            yield Static(
                f"{keymap.key('download.start')}: download   {keymap.key('download.cancel')}: cancel "
                "(what came is kept for the next try)",
                classes="muted dialog-keys",
                markup=False,
            )

    def on_mount(self) -> None:
        self.call_after_refresh(self.ask_plan)  # an answer that comes at once (offline) finds the dialog drawn

    @work(thread=True, exclusive=True)
    def ask_plan(self) -> None:
        try:
            plan = plan_download(self.repo_id)
        except TokenRequired as exc:
            self.app.call_from_thread(self.ask_token, str(exc))
            return
        except DownloadError as exc:
            self.app.call_from_thread(self.failed, str(exc))
            return
        self.app.call_from_thread(self.show_plan, plan)

    def show_plan(self, plan: DownloadPlan) -> None:
        self.plan = plan
        lines = [f"{file.name}  {_mib(file.size)}" for file in plan.files]
        lines.append(f"{len(plan.files)} files, {_mib(plan.total)} in all")
        if plan.skipped:
            lines.append(f"left on the Hub: {', '.join(plan.skipped[:6])}{' …' if len(plan.skipped) > 6 else ''}")
        self.query_one("#download-files", Static).update("\n".join(lines))
        self.query_one("#download-bar", ProgressBar).update(total=plan.total, progress=0)

    @work
    async def ask_token(self, reason: str) -> None:
        self.query_one("#download-files", Static).update(reason)
        token = await self.app.push_screen_wait(
            TextPromptScreen("Hugging Face token (stored where huggingface_hub keeps it)", placeholder="hf_…")
        )
        if not token:
            self.dismiss(None)
            return
        self.store_token(token)

    @work(thread=True, exclusive=True)
    def store_token(self, token: str) -> None:
        try:
            save_token(token)
        except DownloadError as exc:
            self.app.call_from_thread(self.failed, str(exc))
            return
        self.app.call_from_thread(self.ask_plan)

    def failed(self, message: str) -> None:
        """Nothing to download (offline, no such repo, a refused token): the reason, no bars, and
        only the key that closes; offline, what the cache holds."""
        self.running = False
        if hub_offline():
            try:
                cached = ", ".join(repo.repo_id for repo in cached_models()[:8]) or "nothing yet"
            except HubCacheError as exc:
                cached = str(exc)
            message += f". In the cache: {cached}"
        self.query_one("#download-files", Static).update(message)
        for bar in ("#download-file", "#download-file-bar", "#download-overall", "#download-bar"):
            self.query_one(bar).display = False
        close = Keymap.of(self.app).key("download.cancel")
        self.query_one(".dialog-keys", Static).update(f"{close}: close")
        self.notify(message, title="Download", severity="error", timeout=15)

    def action_start(self) -> None:
        if self.plan is None or self.running:
            return
        self.running = True
        self.cancel.clear()
        self.fetch(self.plan)

    def action_cancel(self) -> None:
        if self.running:
            self.cancel.set()  # the thread stops at its next chunk; the screen closes then
        else:
            self.dismiss(None)

    @work(thread=True, exclusive=True, group="fetch")
    def fetch(self, plan: DownloadPlan) -> None:
        try:
            folder = download(plan, self.progress_from_thread, self.cancel)
        except DownloadError as exc:
            self.app.call_from_thread(self.stopped, str(exc))
            return
        self.app.call_from_thread(self.dismiss, loadable(folder, plan.repo_id))

    def stopped(self, message: str) -> None:
        if self.cancel.is_set():
            self.notify(message, title="Download")
            self.dismiss(None)
        else:
            self.failed(message)

    def progress_from_thread(self, progress: DownloadProgress) -> None:
        now = time.monotonic()
        if now - self._drawn >= FRAME_S or progress.done >= progress.total:
            self._drawn = now
            self.app.call_from_thread(self.show_progress, progress)

    def show_progress(self, progress: DownloadProgress) -> None:
        self.query_one("#download-file", Static).update(
            f"{progress.file}  {_mib(progress.file_done)} of {_mib(progress.file_total)}"
        )
        self.query_one("#download-file-bar", ProgressBar).update(
            total=max(progress.file_total, 1), progress=progress.file_done
        )
        self.query_one("#download-overall", Static).update(progress.line())
        self.query_one("#download-bar", ProgressBar).update(total=max(progress.total, 1), progress=progress.done)
