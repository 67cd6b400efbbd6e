"""The progress bar of a fit: tqdm in a terminal or a notebook, nothing elsewhere."""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(show: bool | None, total: int | None, name: str) -> Any:
    """A tqdm bar counting samples (``show=None``: only where someone watches), or ``None``."""
    if not (show if show is not None else _interactive()):
        return None
    from tqdm.auto import tqdm

    class Bar(tqdm):
        monitor_interval = 0  # no monitor thread left behind once the fit is over

    return Bar(total=total, unit="samples", unit_scale=True, desc=f"fedplugin {name}")


def _interactive() -> bool:
    """True in a terminal or a Jupyter kernel: where a progress bar is welcome."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules
