"""Range checks for scalar arguments, built on :func:`sklearn.utils.check_scalar`.

The messages are scikit-learn's, with two additions: a bool is refused where
an int or a number is expected (``check_scalar`` takes it, since ``bool`` is
an ``int``), and so is NaN or infinity (no range check would catch NaN).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Literal

from sklearn.utils import check_scalar

_TYPE_NAMES = {numbers.Integral: "int", numbers.Real: "float"}


def check_number(
    value: Any,
    name: str,
    target_type: type = numbers.Real,
    *,
    min_val: float | None = None,
    max_val: float | None = None,
    include_boundaries: Literal["left", "right", "both", "neither"] = "both",
) -> Any:
    """Check that ``value`` is a finite, non-bool ``target_type`` within the bounds.

    Parameters
    ----------
    value : object
        The argument to check.
    name : str
        Its name, for the error message.
    target_type : {numbers.Real, numbers.Integral}, default numbers.Real
        A number, or an int.
    min_val, max_val : float or None, default None
        The bounds; None for no bound.
    include_boundaries : {"left", "right", "both", "neither"}, default "both"
        Which bounds ``value`` may equal, as in :func:`sklearn.utils.check_scalar`.

    Returns
    -------
    object
        ``value`` itself.

    Raises
    ------
    TypeError
        If ``value`` is a bool or not a ``target_type``.
    ValueError
        If ``value`` is NaN, infinite or out of bounds.

    Examples
    --------
    >>> import numbers
    >>> check_number(3, "block_size", numbers.Integral, min_val=1)
    3
    >>> check_number(0, "block_size", numbers.Integral, min_val=1)
    Traceback (most recent call last):
    ...
    ValueError: block_size == 0, must be >= 1.
    >>> check_number(True, "block_size", numbers.Integral, min_val=1)
    Traceback (most recent call last):
    ...
    TypeError: block_size must be an instance of int, not bool.
    >>> check_number(float("nan"), "tol", min_val=0)
    Traceback (most recent call last):
    ...
    ValueError: tol == nan, must be a finite number.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an instance of {_TYPE_NAMES.get(target_type, target_type)}, not bool.")
    check_scalar(value, name, target_type, min_val=min_val, max_val=max_val, include_boundaries=include_boundaries)
    if not isinstance(value, numbers.Integral) and not math.isfinite(value):  # an int is finite (and may not fit a float)
        raise ValueError(f"{name} == {value}, must be a finite number.")
    return value
