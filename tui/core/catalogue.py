"""The model catalogue: every model chatui can offer, with what it is and what it will cost here.

Models come from the Hugging Face cache, the library's history (the models conversations were
had with: Hub ids, folders and .gguf files), config.toml's `[models] paths`, the bundled model,
and the models the configured server serves. Each gets its facts from its files
(`engine/model_files.py`) and, for this machine, an estimate (`engine/estimates.py`): memory
needed at the dtype and quantization the load would use against memory free, and the decode speed
the measured bandwidth allows. Textual-free: the picker and `chatui --models` show the same list.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tui.engine.estimates import Estimate, estimate
from tui.engine.hub_cache import HubCacheError, cached_models
from tui.engine.machine import Bandwidth, Machine
from tui.engine.model_files import ModelFacts, inspect_model
from tui.engine.settings import LoadSettings
from tui.engine.sources import DEFAULT_MODEL_NAME, ModelSourceError, default_gguf_path, is_converted, resolve_source

log = logging.getLogger(__name__)

REMOTE_TIMEOUT_S = 3.0


@dataclass
class CatalogueEntry:
    name: str  # what the picker shows
    model: str  # what LoadSettings.model takes ("" for the bundled model)
    kind: str  # hub, dir, gguf, remote
    origins: list[str]  # cache, history, config, bundled, server
    facts: ModelFacts = field(default_factory=ModelFacts)
    path: str = ""  # the files: a snapshot folder, a folder, a .gguf
    endpoint: str = ""  # a server's models: its endpoint
    last_used: float | None = None
    estimate: Estimate | None = None

    @property
    def in_hub_cache(self) -> bool:
        return "cache" in self.origins

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["estimate"] = None if self.estimate is None else {**asdict(self.estimate), "fits": self.estimate.fits}
        return data


def _gib(count: int) -> str:
    return f"{count / 2**30:.1f}G" if count >= 2**30 else f"{count / 2**20:.0f}M"


def parameters_text(count: int) -> str:
    if count <= 0:
        return "?"
    if count >= 1e9:
        return f"{count / 1e9:.1f}B"
    return f"{count / 1e6:.0f}M"


def ago(when: float | None, now: float | None = None) -> str:
    if when is None:
        return "never"
    seconds = max((now or time.time()) - when, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


def entry_line(entry: CatalogueEntry, now: float | None = None) -> str:
    """One line for `chatui --models`."""
    facts, guess = entry.facts, entry.estimate
    parts = [
        entry.name,
        facts.architecture or "?",
        parameters_text(facts.parameters),
        facts.dtype or "?",
        _gib(facts.size_bytes) if facts.size_bytes else "?",
        "template?" if entry.kind == "remote" else "chat" if facts.chat_template else "no-template",
        facts.modality,
    ]
    if facts.adapters:
        parts.append(f"adapters={','.join(facts.adapters)}")
    if guess is not None:
        fit = "fits" if guess.fits else "WILL NOT FIT"
        parts.append(f"needs {_gib(guess.memory_needed)} of {_gib(guess.memory_free)} free ({fit})")
        if guess.tok_s:
            parts.append(f"~{guess.tok_s:.0f} tok/s at {guess.dtype}")
    parts.append(f"used {ago(entry.last_used, now)}")
    parts.append(f"[{'+'.join(entry.origins)}]")
    if facts.problem:
        parts.append(f"({facts.problem})")
    return "  ".join(parts)


@dataclass
class Target:
    """Where a model would go: the device, memory free there, the bandwidth, the load settings."""

    device: str
    memory_free: int
    bandwidth: Bandwidth | None
    load: LoadSettings

    @classmethod
    def of(cls, machine: Machine, bandwidth: Bandwidth | None, load: LoadSettings) -> Target:
        on_gpu = machine.gpu is not None and load.device in ("auto", "cuda")
        device = "cuda" if on_gpu else "cpu"
        free = machine.gpu_memory_free if on_gpu else machine.memory_available
        return cls(device, free, bandwidth, load)


def estimate_for(facts: ModelFacts, gguf: bool, target: Target, converting: bool = False) -> Estimate | None:
    """`converting`: a GGUF not converted yet, whose first load holds it in float32 (transformers
    dequantizes a GGUF to float32) before chatui keeps it at the dtype chosen."""
    from tui.engine.hardware import pick_dtype

    if facts.parameters <= 0:
        return None
    checkpoint = None if gguf else (facts.dtype or None)
    dtype = pick_dtype(target.load.dtype, target.device, checkpoint)
    guess = estimate(
        facts.parameters,
        facts.embedding_parameters,
        facts.tied_embeddings,
        dtype,
        target.load.quantization,
        target.memory_free,
        target.bandwidth.bytes_per_s if target.bandwidth else 0.0,
    )
    if converting:
        guess = replace(guess, memory_needed=max(guess.memory_needed, facts.parameters * 4))
    return guess


class Catalogue:
    """Gathers the entries; each source that fails is logged and left out, never fatal."""

    def __init__(self, target: Target | None = None) -> None:
        self.target = target
        self.entries: dict[tuple[str, str], CatalogueEntry] = {}
        self.problems: list[str] = []

    def _add(self, entry: CatalogueEntry) -> CatalogueEntry:
        key = (entry.endpoint, entry.model)
        found = self.entries.get(key)
        if found is None:
            self.entries[key] = entry
            return entry
        for origin in entry.origins:
            if origin not in found.origins:
                found.origins.append(origin)
        return found

    def add_hub_cache(self) -> None:
        try:
            repos = cached_models()
        except HubCacheError as exc:
            self.problems.append(str(exc))
            return
        for repo in repos:
            ggufs = sorted(repo.snapshot.glob("*.gguf"))
            path = ggufs[0] if ggufs and not (repo.snapshot / "config.json").exists() else repo.snapshot
            facts = inspect_model(path, size_bytes=repo.size_bytes)
            facts.size_bytes = repo.size_bytes
            if path.suffix == ".gguf":  # a GGUF-only repo: transformers loads it by its file
                self._add(CatalogueEntry(repo.repo_id, str(path), "gguf", ["cache"], facts, str(path)))
            else:
                self._add(CatalogueEntry(repo.repo_id, repo.repo_id, "hub", ["cache"], facts, str(path)))

    def add_local(self, model: str, origin: str, last_used: float | None = None) -> None:
        """A folder or .gguf file (or a Hub id, from the history); missing ones are left out, and
        one listed in config.toml that is not there is a problem to show (the user wrote it)."""
        try:
            source = resolve_source(model or None)
        except ModelSourceError as exc:
            if origin == "config":
                self.problems.append(f"config.toml lists {model}, which cannot be read: {exc}")
            return
        if source.kind == "hub":
            entry = self.entries.get(("", source.location))
            if entry is None:  # used before, no longer in the cache: offered for download
                entry = self._add(CatalogueEntry(source.name, source.location, "hub", [origin]))
            elif origin not in entry.origins:
                entry.origins.append(origin)
        else:
            path = Path(source.location)
            name = DEFAULT_MODEL_NAME if not model else source.name
            entry = self._add(CatalogueEntry(name, model, source.kind, [origin], inspect_model(path), str(path)))
        if last_used is not None and (entry.last_used is None or last_used > entry.last_used):
            entry.last_used = last_used

    def add_bundled(self) -> None:
        try:
            default_gguf_path()
        except ModelSourceError as exc:
            self.problems.append(str(exc))
            return
        self.add_local("", "bundled")

    def add_history(self, used: list[tuple[str, str, float]]) -> None:
        for model, endpoint, when in used:
            if endpoint:
                name = model or "(server default)"
                entry = self._add(CatalogueEntry(name, model, "remote", ["history"], endpoint=endpoint))
                entry.last_used = max(entry.last_used or 0, when)
            else:
                self.add_local(model, "history", when)

    def add_server(self, endpoint: str) -> None:
        """The models the server at `endpoint` serves (a short timeout: it may be down)."""
        from tui.engine.remote import RemoteBackend

        backend = RemoteBackend()
        try:
            info = backend.load(LoadSettings(endpoint=endpoint)).result(timeout=REMOTE_TIMEOUT_S)
            for model in info.available_models:
                self._add(CatalogueEntry(model, model, "remote", ["server"], endpoint=endpoint))
        except Exception as exc:  # down, refused, not OpenAI-compatible: one line, the rest stays
            self.problems.append(f"server {endpoint}: {exc}")
        finally:
            backend.close()

    def finish(self) -> list[CatalogueEntry]:
        """The entries with their estimates: the most recently used first, then by name."""
        entries = list(self.entries.values())
        for entry in entries:
            if self.target is not None and entry.kind != "remote":
                gguf = entry.path.lower().endswith(".gguf")
                converting = gguf and not is_converted(Path(entry.path))
                entry.estimate = estimate_for(entry.facts, gguf, self.target, converting)
        return sorted(entries, key=lambda e: (-(e.last_used or 0), e.name.lower()))


def build_catalogue(
    target: Target | None,
    used: list[tuple[str, str, float]],
    config_paths: list[str],
    endpoint: str | None = None,
) -> tuple[list[CatalogueEntry], list[str]]:
    """Every model, and the problems met on the way (one line each)."""
    catalogue = Catalogue(target)
    catalogue.add_hub_cache()
    catalogue.add_bundled()
    for path in config_paths:
        catalogue.add_local(str(Path(path).expanduser()), "config")
    catalogue.add_history(used)
    if endpoint:
        catalogue.add_server(endpoint)
    return catalogue.finish(), catalogue.problems


def load_catalogue(
    load: LoadSettings,
    config_paths: list[str],
    measure_gpu: bool = True,
    with_server: bool = True,
    measure: bool = True,
) -> tuple[list[CatalogueEntry], list[str]]:
    """The catalogue for this machine: the library's history, the HF cache, config.toml's
    paths and the configured server. The bandwidth is measured once (about a second) when never
    measured here before, and when `measure` (not while a reply runs: it would share the memory
    with it, and the figure kept would be too low); a GPU's only when `measure_gpu` too (it runs
    torch: the app leaves torch to the engine's thread, and uses the cached figure or none)."""
    from tui.engine.machine import cached_bandwidth, describe_machine, memory_bandwidth
    from tui.store import Library, StoreError

    machine = describe_machine()
    device = "cuda" if machine.gpu is not None and load.device in ("auto", "cuda") else "cpu"
    bandwidth: Bandwidth | None
    if measure and (device == "cpu" or measure_gpu):
        bandwidth = memory_bandwidth(device)
    else:
        bandwidth = cached_bandwidth(device)
    problems: list[str] = []
    try:
        with Library() as library:
            used = library.models_used()
    except StoreError as exc:
        used = []
        problems.append(str(exc))
    entries, found = build_catalogue(
        Target.of(machine, bandwidth, load), used, config_paths, load.endpoint if with_server else None
    )
    return entries, problems + found
