"""The Hugging Face cache (HF_HOME/hub, as huggingface_hub finds it): the models in it, and
deleting one with huggingface_hub's own cache code (its blobs go when no other revision uses
them)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class HubCacheError(Exception):
    """The cache cannot be read or changed; one line for the user."""


@dataclass(frozen=True)
class CachedRepo:
    repo_id: str
    snapshot: Path  # the newest revision's snapshot folder
    size_bytes: int  # the repo's bytes on disk, every revision
    revisions: tuple[str, ...]  # commit hashes
    last_modified: float


def hub_cache_dir() -> Path:
    """The hub cache as huggingface_hub's constants say now (HF_HOME/hub, or HF_HUB_CACHE)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def cached_models() -> list[CachedRepo]:
    """Model repos in the cache, each with its newest complete revision (one with a config.json
    or a .gguf); an empty list when there is no cache yet."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(hub_cache_dir())
    except CacheNotFound:
        return []
    except OSError as exc:
        raise HubCacheError(f"cannot read the Hugging Face cache: {exc.strerror or exc}") from None
    found = []
    for repo in info.repos:
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda revision: revision.last_modified)
        found.append(
            CachedRepo(
                repo_id=repo.repo_id,
                snapshot=Path(newest.snapshot_path),
                size_bytes=repo.size_on_disk,
                revisions=tuple(revision.commit_hash for revision in repo.revisions),
                last_modified=repo.last_modified,
            )
        )
    return sorted(found, key=lambda repo: repo.repo_id.lower())


def delete_model(repo_id: str) -> int:
    """Delete every cached revision of `repo_id`; returns the bytes freed."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(hub_cache_dir())
    except CacheNotFound:
        raise HubCacheError(f"{repo_id} is not in the Hugging Face cache") from None
    hashes = [
        revision.commit_hash
        for repo in info.repos
        if repo.repo_type == "model" and repo.repo_id == repo_id
        for revision in repo.revisions
    ]
    if not hashes:
        raise HubCacheError(f"{repo_id} is not in the Hugging Face cache")
    strategy = info.delete_revisions(*hashes)
    try:
        strategy.execute()
    except OSError as exc:
        raise HubCacheError(f"cannot delete {repo_id} from the cache: {exc.strerror or exc}") from None
    log.info("deleted %s from the Hugging Face cache (%d bytes)", repo_id, strategy.expected_freed_size)
    return strategy.expected_freed_size
