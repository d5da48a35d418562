"""Per-test settings: ini defaults, then ``bgtasks`` markers from module to function."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from pytest_bgtasks._numbers import checked_seconds

Mode = Literal["eager", "deferred"]
MODES: tuple[Mode, ...] = ("eager", "deferred")
Queues = Literal["intercept", "passthrough"]
QUEUES: tuple[Queues, ...] = ("intercept", "passthrough")
Roundtrip = Literal["json", "pickle"]
ROUNDTRIPS: tuple[Roundtrip, ...] = ("json", "pickle")

#: Names whose values never appear in output (ini ``bgtasks_redact`` adds to them). Matched
#: as substrings, ignoring case, ``-``, ``_``.
DEFAULT_SECRET_NAMES: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "authorization",
    "credential",
    "private_key",
    "cookie",
)

#: Seconds an async task may hold its event loop without yielding: asyncio's own
#: ``slow_callback_duration``.
DEFAULT_BLOCKING_LIMIT = 0.1

MARKER = "bgtasks"
MARKER_DOC = (
    "bgtasks(*, mode='eager', strict=True, queues='intercept', lifetimes=True, "
    "roundtrip=None, blocking_limit=0.1, contain=True): configure the bgtasks fixture for "
    "this test: mode 'eager' runs background tasks as Starlette does, 'deferred' holds them "
    "until bgtasks.run_all(); strict=False stops failed or dropped tasks from erroring the "
    "test; queues='passthrough' sends queue jobs (Celery, arq, taskiq, Dramatiq, RQ) to the "
    "real broker and only records them; lifetimes=False stops arguments that end before the "
    "task runs (the request, a closed upload or dependency value) from erroring it; "
    "roundtrip='json' or 'pickle' errors it when a background task's arguments do not survive"
    " that serializer; blocking_limit is the seconds an async task may hold the event loop "
    "without yielding (None: no limit); contain=False lets a background task's exception "
    "leave the app as it would without the plugin (the client raises it, a server logs it), "
    "to test the app's error reporting."
)


class Options:
    """Keyword-only settings, so a typo in a marker is a clear TypeError."""

    def __init__(
        self,
        *,
        mode: str = "eager",
        strict: bool = True,
        queues: str = "intercept",
        lifetimes: bool = True,
        roundtrip: str | None = None,
        blocking_limit: float | None = DEFAULT_BLOCKING_LIMIT,
        contain: bool = True,
    ) -> None:
        if mode not in MODES:
            raise ValueError(
                f"bgtasks mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}"
            )
        if queues not in QUEUES:
            raise ValueError(
                f"bgtasks queues must be one of {', '.join(map(repr, QUEUES))}, got {queues!r}"
            )
        for name, value in (("strict", strict), ("lifetimes", lifetimes), ("contain", contain)):
            if not isinstance(value, bool):
                raise TypeError(f"bgtasks {name} must be True or False, got {value!r}")
        if roundtrip is not None and roundtrip not in ROUNDTRIPS:
            raise ValueError(
                f"bgtasks roundtrip must be one of {', '.join(map(repr, ROUNDTRIPS))} or None,"
                f" got {roundtrip!r}"
            )
        self.mode: Mode = mode
        self.strict = strict
        self.queues: Queues = queues
        self.lifetimes = lifetimes
        self.roundtrip: Roundtrip | None = roundtrip
        self.blocking_limit = checked_seconds(
            blocking_limit, "bgtasks blocking_limit", positive=True, none_means="no limit"
        )
        #: False: a background task's exception leaves the app, as it would without the plugin.
        self.contain = contain

    @classmethod
    def from_ini(cls, config: pytest.Config) -> Options:
        """The suite's defaults; a bad ini value is a UsageError naming its option."""
        try:
            strict = config.getini("bgtasks_strict")
        except (ValueError, pytest.UsageError) as error:  # pytest < 9 raises ValueError
            raise pytest.UsageError(
                f"ini option bgtasks_strict takes true or false ({error})"
            ) from None
        roundtrip = config.getini("bgtasks_roundtrip") or None
        if roundtrip is not None and roundtrip not in ROUNDTRIPS:
            raise pytest.UsageError(
                f"ini option bgtasks_roundtrip takes json or pickle, got {roundtrip!r}"
            )
        limit = _ini_blocking_limit(config.getini("bgtasks_blocking_limit"))
        try:
            return cls(
                mode=config.getini("bgtasks_mode"),
                strict=strict,
                roundtrip=roundtrip,
                blocking_limit=limit,
            )
        except (TypeError, ValueError) as error:
            raise pytest.UsageError(f"ini option bgtasks_mode: {error}") from None

    def merged(self, item: pytest.Item) -> Options:
        """These options overridden by the item's markers, the nearest marker winning."""
        settings: dict[str, Any] = {
            "mode": self.mode,
            "strict": self.strict,
            "queues": self.queues,
            "lifetimes": self.lifetimes,
            "roundtrip": self.roundtrip,
            "blocking_limit": self.blocking_limit,
            "contain": self.contain,
        }
        for marker in reversed(list(item.iter_markers(MARKER))):
            if marker.args:
                raise TypeError(
                    f"@pytest.mark.{MARKER} takes keyword arguments only"
                    f" ({', '.join(f'{name}=...' for name in settings)}),"
                    f" got positional {marker.args!r}"
                )
            unknown = set(marker.kwargs) - set(settings)
            if unknown:
                raise TypeError(
                    f"@pytest.mark.{MARKER} got unknown keyword(s) {', '.join(sorted(unknown))};"
                    f" valid ones are {', '.join(settings)}"
                )
            settings.update(marker.kwargs)
        return Options(**settings)


def _ini_blocking_limit(raw: str) -> float | None:
    """The ini value: seconds > 0, or ``none`` for no limit."""
    if raw.strip().lower() == "none":
        return None
    try:
        value: object = float(raw)
    except ValueError:
        value = raw  # refused below, shown as written
    try:
        return checked_seconds(value, "ini option bgtasks_blocking_limit", positive=True)
    except (TypeError, ValueError) as error:
        raise pytest.UsageError(f"{error} (or none for no limit)") from None
