"""How promptly a client's messages reach the scheduler while rounds run.

Distributed's client sends the scheduler its task submissions and key
releases over a batched stream that writes at most once every 10 ms
(``Client.scheduler_comm``, a ``distributed.batched.BatchedSend``). That
saves writes when a program submits thousands of tasks; a fit submits a few
per round, and a round's tasks then wait for the window that the previous
round's key releases opened: up to 10 ms per round (21 ms rounds instead of
15 ms at 2 workers, synchronously). While a fit runs, the stream writes each
message at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_lock = threading.Lock()
# id(stream) -> (fits using it now, its own interval); an entry lives while a fit does
_users: dict[int, tuple[int, float]] = {}


@contextmanager
def prompt_messages(client: Any) -> Iterator[None]:
    """Inside the block, ``client``'s messages to the scheduler are written at once, not batched.

    Fits that overlap on one client share the setting; the last one to end
    gives the stream its own interval back. A client without a batched stream
    (another implementation) is left as it is.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> client = SimpleNamespace(scheduler_comm=SimpleNamespace(interval=0.01))
    >>> with prompt_messages(client):
    ...     client.scheduler_comm.interval
    0
    >>> client.scheduler_comm.interval
    0.01
    """
    stream = getattr(client, "scheduler_comm", None)
    if not isinstance(getattr(stream, "interval", None), (int, float)):
        yield
        return
    with _lock:
        users, interval = _users.get(id(stream), (0, stream.interval))
        _users[id(stream)] = (users + 1, interval)
        stream.interval = 0
    try:
        yield
    finally:
        with _lock:
            users, interval = _users.pop(id(stream))
            if users > 1:
                _users[id(stream)] = (users - 1, interval)
            else:
                stream.interval = interval
