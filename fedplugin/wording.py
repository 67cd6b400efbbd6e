"""Counted nouns in messages: "1 round", "2 rounds", never "1 rounds"."""

from __future__ import annotations

# nouns whose plural is not noun + "s"
_IRREGULAR = {"batch": "batches", "process": "processes", "matrix": "matrices"}


def plural(n: float, noun: str) -> str:
    """``noun`` in the singular when ``n`` is 1, else in the plural.

    Examples
    --------
    >>> plural(1, "worker"), plural(2, "worker"), plural(0, "batch")
    ('worker', 'workers', 'batches')
    """
    if n == 1:
        return noun
    return _IRREGULAR.get(noun, noun + "s")


def count(n: float, noun: str) -> str:
    """``n`` followed by ``noun``, in the singular or the plural as ``n`` needs.

    Examples
    --------
    >>> count(1, "round"), count(3, "round"), count(1, "batch"), count(2, "batch")
    ('1 round', '3 rounds', '1 batch', '2 batches')
    """
    return f"{n} {plural(n, noun)}"


__all__ = ["count", "plural"]
