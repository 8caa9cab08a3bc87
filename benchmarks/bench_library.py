"""Conversation library timings on 10,000 conversations (3 messages each): open + list the newest
200, and three searches. Prints figures only; nothing passes or fails.

    .venv/bin/python benchmarks/bench_library.py
"""

from __future__ import annotations

import itertools
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tui.store import Library  # noqa: E402

CONVERSATIONS = 10_000
REPEATS = 5
SEARCHES = ("python", "memory leak", "quantization bfloat")


def fill(path: Path) -> None:
    """Write the conversations straight into the current schema in one transaction (the
    library's triggers keep the search index in step)."""
    Library(path).close()  # create the schema
    rng = random.Random(0)
    words = [f"w{n}" for n in range(5_000)] + [
        "python",
        "memory",
        "leak",
        "quantization",
        "bfloat16",
        "tokenizer",
        "attention",
        "cache",
    ]
    cum_weights = list(itertools.accumulate([1.0] * 5_000 + [40, 30, 10, 5, 5, 20, 20, 20]))

    def text(n: int) -> str:
        return " ".join(rng.choices(words, cum_weights=cum_weights, k=n))

    conversations, messages = [], []
    start = time.time() - CONVERSATIONS * 60
    for n in range(CONVERSATIONS):
        conv_id, created = f"{n:032x}", start + n * 60
        ids = [f"{n:028x}m{k:03d}" for k in range(3)]
        conversations.append((conv_id, text(6), created, created + 30, "org/model", ids[-1]))
        for k, (role, length) in enumerate((("user", 20), ("assistant", 150), ("user", 20))):
            messages.append((ids[k], conv_id, ids[k - 1] if k else None, role, text(length), created + 10 * k))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO conversations (id, title, created, updated, model, leaf_id) VALUES (?, ?, ?, ?, ?, ?)",
        conversations,
    )
    # Staged, then copied in one statement: FTS5 flushes its pending index at every statement
    # that fires the triggers, so row-by-row inserts would be several times slower.
    db.execute("CREATE TEMP TABLE staged (id, conversation_id, parent_id, role, content, created)")
    db.executemany("INSERT INTO staged VALUES (?, ?, ?, ?, ?, ?)", messages)
    db.execute(
        "INSERT INTO messages (id, conversation_id, parent_id, role, created) "
        "SELECT id, conversation_id, parent_id, role, created FROM staged ORDER BY rowid"
    )
    db.execute(
        "INSERT INTO message_parts (message_id, position, kind, text) "
        "SELECT id, 0, 'text', content FROM staged ORDER BY rowid"
    )
    db.execute("COMMIT")
    db.close()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "library.sqlite3"
        began = time.perf_counter()
        fill(path)
        print(
            f"fill {CONVERSATIONS:,} conversations × 3 messages: {ms(time.perf_counter() - began)}"
            f"  ({path.stat().st_size / 2**20:.1f} MiB)"
        )

        opens, lists = [], []
        for _ in range(REPEATS):
            began = time.perf_counter()
            library = Library(path)
            opened = time.perf_counter()
            newest = library.list(limit=200)
            listed = time.perf_counter()
            library.close()
            opens.append(opened - began)
            lists.append(listed - opened)
        assert len(newest) == 200
        print(f"open (incl. integrity_check)     median {ms(statistics.median(opens))}  first {ms(opens[0])}")
        print(f"list newest 200                  median {ms(statistics.median(lists))}  first {ms(lists[0])}")

        with Library(path) as library:
            for query in SEARCHES:
                times, hits = [], 0
                for _ in range(REPEATS):
                    began = time.perf_counter()
                    hits = len(library.search(query))
                    times.append(time.perf_counter() - began)
                print(
                    f"search {query!r:24} median {ms(statistics.median(times))}"
                    f"  first {ms(times[0])}  ({hits} hits, limit 200)"
                )


if __name__ == "__main__":
    main()
