"""Keep the scheduler's record of a long fit's span from growing with every round.

For every ``client.submit``, Dask's scheduler appends ``{"type": "Future"}`` to
the metadata of the span the task joins (``Span.add_metadata`` in
``distributed/spans.py``), and it keeps spans for its whole life. A fit keeps
one span however many rounds it runs (see :mod:`fedplugin.anchors`), but it
submits a task per worker per round: about 0.2 KB per task on the scheduler,
never freed, measured by ``benchmarks/soak.py``.

:class:`SpanMetadataTrim` is a scheduler plugin that, every
``TRIM_EVERY`` (256) graphs submitted, drops repeated entries from each span's
list of collections. The list only says which kinds of collections were
computed in the span; its repeats carry nothing, and no part of Dask counts
them.

Examples
--------
>>> from types import SimpleNamespace
>>> span = SimpleNamespace(_metadata={"collections": [{"type": "Future"}] * 3 + [{"type": "Array"}]})
>>> unique_collections(span)
2
>>> span._metadata["collections"]
[{'type': 'Future'}, {'type': 'Array'}]
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.spans import Span

#: Name of the plugin on the scheduler (registering it again is a no-op).
TRIM_NAME = "fedplugin-span-trim"
#: Graphs submitted between two trims.
TRIM_EVERY = 256


class SpanMetadataTrim(SchedulerPlugin):
    """Scheduler plugin: every ``TRIM_EVERY`` (256) submitted graphs, drop repeats from the spans' metadata."""

    name = TRIM_NAME
    idempotent = True

    def __init__(self) -> None:
        self.graphs = 0

    def update_graph(self, scheduler: Any, **kwargs: Any) -> None:
        self.graphs += 1
        if self.graphs % TRIM_EVERY == 0:
            trim_spans(scheduler)


def trim_spans(scheduler: Any) -> int:
    """Drop repeated collections from every span of ``scheduler``; return how many were dropped."""
    extension = scheduler.extensions.get("spans")
    spans = getattr(extension, "spans", {})
    # distributed 2024.5 to 2026.7 also remembered the id of every metadata
    # object in a set on the Span class, never emptied: forgetting them only
    # lets a repeat in, which the next trim drops.
    seen = getattr(Span, "_metadata_seen", None)
    if isinstance(seen, set):
        seen.clear()
    return sum(unique_collections(span) for span in list(spans.values()))


def unique_collections(span: Any) -> int:
    """Keep the first of each repeated entry of ``span``'s collections; return how many went."""
    metadata = getattr(span, "_metadata", None)  # Dask's private record: absent before 2024.6
    collections = metadata.get("collections") if isinstance(metadata, dict) else None
    if not collections or len(collections) < 2:
        return 0
    kept, seen = [], set()
    for entry in collections:
        marker = repr(entry)  # entries are small dicts of strings
        if marker not in seen:
            seen.add(marker)
            kept.append(entry)
    dropped = len(collections) - len(kept)
    collections[:] = kept
    return dropped


__all__ = ["SpanMetadataTrim", "TRIM_EVERY", "trim_spans", "unique_collections"]
