"""Warnings for the user that point at the user's line, however deep in fedplugin they are raised.

A warning raised with ``stacklevel=N`` points N frames up, but fedplugin
raises the same warning at different depths from different entry points
(``Coordinator.fit``, ``fit_stream``, ``predict``, ``FederatedEstimator.fit``,
a ``with federated_session(...)``). :func:`warn_user` counts the frames
instead: it points at the first frame outside the fedplugin package, as
``warnings.warn(..., skip_file_prefixes=...)`` does from Python 3.12.

Examples
--------
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     warn_user("something to know")
>>> caught[0].filename.startswith("<doctest")  # the line above, not fedplugin's
True
>>> str(caught[0].message), caught[0].category.__name__
('something to know', 'UserWarning')
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

#: Frames in these files are fedplugin's: its own modules, and ``contextlib``, which runs
#: fedplugin's context managers (``federated_session``) between the user's line and fedplugin.
INTERNAL = (os.path.dirname(os.path.abspath(__file__)) + os.sep, os.path.abspath(contextlib.__file__))


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the first caller outside fedplugin.

    Without such a caller (fedplugin code all the way up, as in a thread of
    its own) it is attributed to the function that called :func:`warn_user`.
    """
    frame, level = sys._getframe(0), 1  # stacklevel 1: this function, which calls warnings.warn
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=2 if frame is None else level)


__all__ = ["warn_user"]
