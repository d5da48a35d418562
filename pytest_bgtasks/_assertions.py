"""The record's queries and assertions, over any selection of calls: the recorder's or a block's.

:class:`CallAssertions` is shared by ``BackgroundTaskRecorder`` (every call of the test) and
``CaptureBlock`` (the calls scheduled inside one ``with bgtasks.capture():``), so both answer
the same methods with the same messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pytest_bgtasks._matching import Expectation, Target, check_target, describe_target, refers_to
from pytest_bgtasks._numbers import checked_count
from pytest_bgtasks._record import NOT_STARTED, TaskCall
from pytest_bgtasks._rendering import Renderer


class CallAssertions:
    """Queries and assertions on the calls :meth:`_scope` selects.

    A subclass sets ``_renderer`` and ``_owner`` (how the test reaches these methods, for
    error messages: ``"bgtasks"``), and gives :meth:`_scope` and :meth:`_everything`.
    """

    _renderer: Renderer
    _owner: str

    def _scope(self) -> Sequence[TaskCall]:
        """The calls these methods see, in scheduling order."""
        raise NotImplementedError

    def _everything(self) -> Sequence[TaskCall]:
        """Every call of the test, whose secrets a message hides even when it lists fewer."""
        raise NotImplementedError

    # -- the record -------------------------------------------------------------------------

    @property
    def calls(self) -> list[TaskCall]:
        """The recorded tasks, in scheduling order."""
        return list(self._scope())

    @property
    def succeeded(self) -> list[TaskCall]:
        return [call for call in self._scope() if call.status == "succeeded"]

    @property
    def failed(self) -> list[TaskCall]:
        return [call for call in self._scope() if call.status == "failed"]

    @property
    def pending(self) -> list[TaskCall]:
        """Tasks scheduled but not run yet: held in deferred mode, or about to run."""
        return [call for call in self._scope() if call.status in NOT_STARTED]

    def calls_to(self, func_or_name: Target) -> list[TaskCall]:
        """The recorded calls of a function, or of a function by name."""
        __tracebackhide__ = True
        return self._calls_to(func_or_name, "calls_to")

    def _calls_to(self, target: Target, method: str) -> list[TaskCall]:
        __tracebackhide__ = True
        check_target(target, f"{self._owner}.{method}")
        return [call for call in self._scope() if refers_to(call, target)]

    # -- assertions -------------------------------------------------------------------------

    def assert_scheduled(self, func: Target, /, *args: Any, **kwargs: Any) -> TaskCall:
        """Assert some task ran or will run ``func`` with these arguments; return the first.

        Only the arguments given are compared, after binding them to ``func``'s signature, so
        positional and keyword forms match each other; ``unittest.mock.ANY`` matches anything.
        """
        __tracebackhide__ = True
        expectation = self._matching("assert_scheduled", func, args, kwargs)
        if not expectation.matches:
            message = f"Expected {self._expectation(expectation)} to be scheduled"
            self._fail(message, notes=expectation.notes)
        return expectation.matches[0]

    def assert_scheduled_once(self, func: Target, /, *args: Any, **kwargs: Any) -> TaskCall:
        """Assert exactly one task matches, as :meth:`assert_scheduled` matches; return it."""
        __tracebackhide__ = True
        expectation = self._matching("assert_scheduled_once", func, args, kwargs)
        if len(expectation.matches) != 1:
            self._fail(
                f"Expected {self._expectation(expectation)} to be scheduled once,"
                f" it was scheduled {len(expectation.matches)} times",
                notes=expectation.notes,
            )
        return expectation.matches[0]

    def assert_scheduled_times(
        self, func: Target, n: int, /, *args: Any, **kwargs: Any
    ) -> list[TaskCall]:
        """Assert exactly ``n`` tasks match, as :meth:`assert_scheduled` matches; return them.

        The message lists the matching calls and the near misses: the calls of ``func`` whose
        arguments differ.
        """
        __tracebackhide__ = True
        method = "assert_scheduled_times"
        count = checked_count(n, f"{self._owner}.{method}(func, n)", minimum=0)
        expectation = self._matching(method, func, args, kwargs)
        found = len(expectation.matches)
        if found != count:
            self._fail_listing(
                f"Expected {self._expectation(expectation)} to be scheduled {_times(count)},"
                f" it was scheduled {_times(found)}",
                [
                    ("Matching tasks", expectation.matches),
                    (f"Near misses, {expectation.name} with other arguments", expectation.misses),
                ],
                expectation.notes,
            )
        return expectation.matches

    def assert_not_scheduled(self, func: Target | None = None, /) -> None:
        """Assert no task ran ``func`` (with ``None``: that no task was scheduled at all)."""
        __tracebackhide__ = True
        calls = self._scope() if func is None else self._calls_to(func, "assert_not_scheduled")
        if calls:
            what = "no background task" if func is None else f"no call to {describe_target(func)}"
            self._fail(f"Expected {what} to be scheduled", list(calls))

    def assert_all_succeeded(self) -> None:
        """Assert every recorded task ran and succeeded."""
        __tracebackhide__ = True
        others = [call for call in self._scope() if call.status != "succeeded"]
        if others:
            self._fail(f"Expected every background task to succeed, {len(others)} did not", others)

    def assert_failed(
        self,
        func: Target,
        /,
        exc_type: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        match: str | re.Pattern[str] | None = None,
    ) -> TaskCall:
        """Assert a call to ``func`` failed with ``exc_type`` (message searched for ``match``).

        ``exc_type`` is an exception class or a tuple of them, as ``isinstance`` takes.
        The failures that match are expected: the strict check at teardown lets them pass.
        """
        __tracebackhide__ = True
        calls = self._calls_to(func, "assert_failed")
        classes = exc_type if isinstance(exc_type, tuple) else (exc_type,)
        if not classes or not all(
            isinstance(cls, type) and issubclass(cls, BaseException) for cls in classes
        ):
            raise TypeError(
                f"{self._owner}.assert_failed() takes the exception class the task failed with,"
                f" such as ConnectionError (not a string or an instance), got {exc_type!r}"
            )
        pattern = _pattern(match, f"{self._owner}.assert_failed")
        matches = [
            call
            for call in calls
            if call.status == "failed"
            and isinstance(call.exception, classes)
            and (pattern is None or pattern.search(str(call.exception)))
        ]
        if not matches:
            names = " or ".join(cls.__name__ for cls in classes)
            wanted = f"{describe_target(func)} to fail with {names}"
            self._fail(f"Expected {wanted}" + (f" matching {match!r}" if match else ""))
        for call in matches:
            call.expected = True
        return matches[0]

    def assert_dropped(self, func: Target | None = None, /) -> list[TaskCall]:
        """Assert tasks (of ``func``, or any) were scheduled and dropped unrun; return them.

        The drops that match are expected: the strict check at teardown lets them pass.
        """
        __tracebackhide__ = True
        pool = self._scope() if func is None else self._calls_to(func, "assert_dropped")
        dropped = [call for call in pool if call.status == "dropped"]
        if not dropped:
            what = "a background task" if func is None else f"a call to {describe_target(func)}"
            self._fail(f"Expected {what} to be dropped without running")
        for call in dropped:
            call.expected = True
        return dropped

    # -- messages ---------------------------------------------------------------------------

    def _matching(
        self, method: str, func: Target, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Expectation:
        __tracebackhide__ = True
        expectation = Expectation(
            func,
            args,
            kwargs,
            method=f"{self._owner}.{method}",
            is_secret=self._renderer.is_secret,
            render=self._renderer.arguments,
        )
        expectation.select(self._scope())
        return expectation

    def _expectation(self, expectation: Expectation) -> str:
        return f"a background task {expectation.name}({expectation.described})"

    def _fail(
        self, message: str, calls: list[TaskCall] | None = None, notes: list[str] | None = None
    ) -> None:
        __tracebackhide__ = True
        if calls is None:
            label, shown = "Scheduled tasks", list(self._scope())
        else:
            label, shown = "Offending tasks", calls
        empty = "(no background task was scheduled)"
        self._fail_listing(message, [(label, shown)], notes or [], empty=empty)

    def _fail_listing(
        self,
        message: str,
        sections: list[tuple[str, list[TaskCall]]],
        notes: list[str],
        empty: str = "(none)",
    ) -> None:
        """Raise an AssertionError: ``message``, then each section's calls, then the notes."""
        __tracebackhide__ = True
        lines = [f"{message}."]
        for label, calls in sections:
            lines += [f"{label} ({len(calls)}):", self._renderer.block(calls) if calls else empty]
        text = "\n".join([*lines, *notes])
        raise AssertionError(self._renderer.scrub(text, self._everything()))  # expected too


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _pattern(match: object, method: str) -> re.Pattern[str] | None:
    """``match`` compiled, or an error naming ``method`` when it is not a regular expression."""
    __tracebackhide__ = True
    if match is None or isinstance(match, re.Pattern):
        return match
    if not isinstance(match, str):
        raise TypeError(f"{method}(match=...) takes a regular expression string, got {match!r}")
    try:
        return re.compile(match)
    except re.error as error:
        raise ValueError(
            f"{method}(match=...) is not a valid regular expression: {error} in {match!r}"
        ) from None
