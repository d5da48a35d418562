"""The numbers users give the plugin (seconds and counts), checked in one place.

Every timeout, delay and count goes through here, so each refuses the same bad values (NaN,
infinity, negatives, booleans, strings) with an error naming where the value was given.
"""

from __future__ import annotations

import math
import numbers
import threading
from typing import overload


@overload
def checked_seconds(
    value: object, where: str, *, positive: bool = ..., forever: str = ...
) -> float: ...


@overload
def checked_seconds(
    value: object, where: str, *, positive: bool = ..., forever: str = ..., none_means: str
) -> float | None: ...


def checked_seconds(
    value: object,
    where: str,
    *,
    positive: bool = False,
    forever: str = "",
    none_means: str | None = None,
) -> float | None:
    """``value`` as a finite number of seconds, or an error naming ``where`` it was given.

    ``positive`` refuses zero too. ``none_means`` lets None through and says what it means
    (``"no bound"``), so the error can offer it; otherwise None is refused. ``forever`` says
    what to use instead of infinity.
    """
    __tracebackhide__ = True
    if value is None and none_means is not None:
        return None
    wanted = "a finite number of seconds " + ("> 0" if positive else ">= 0")
    if none_means is not None:
        wanted += f", or None for {none_means}"
    refused = f"{where} takes {wanted}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(refused)
    seconds = float(value)
    if math.isinf(seconds) and seconds > 0 and forever:
        raise ValueError(f"{refused}: {forever}")
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        raise ValueError(refused)
    if seconds > threading.TIMEOUT_MAX:
        raise ValueError(f"{refused}, more than a wait can take ({threading.TIMEOUT_MAX:g}s)")
    return seconds


def checked_count(value: object, where: str, *, minimum: int = 1) -> int:
    """``value`` as a whole number >= ``minimum``, or an error naming ``where`` it was given."""
    __tracebackhide__ = True
    refused = f"{where} takes a whole number >= {minimum}, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(refused)
    if value < minimum:
        raise ValueError(refused)
    return value
