"""Which values are secret, by name and by what they are, and hiding them from any text.

A :class:`Redactor` holds the secret-looking names (the defaults and ``bgtasks_redact``). For
one set of arguments it makes a :class:`Redaction`: the arguments with their secrets masked, for
display, and ``scrub(text)``, which hides every secret found there from any other text about the
same call (an exception message, a traceback, a request path, a fault's description).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pytest_bgtasks._options import DEFAULT_SECRET_NAMES

REDACTED = "***"

#: Secrets shorter than this are hidden where they stand (their argument, key, URL or path
#: segment) but not searched for inside other text, where "1" or "ab" would erase everything.
MIN_SCRUBBED_LENGTH = 4

#: How far secrets are searched for inside arguments: nesting levels, items per container,
#: values in all (a huge argument costs a bounded time; secret names are masked regardless).
_SEARCH_DEPTH = 20
_SEARCH_ITEMS = 1000
_SEARCH_VALUES = 20_000
#: How much of a masked copy is built: what the shortened display can show, plus one.
_SHOWN_DEPTH = 4
_SHOWN_ITEMS = 7

_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)"
    r"(?P<user>[^\s:/?#@'\"\[\]]*)(?::(?P<password>[^\s/?#@'\"]*))?@"
)
_ASSIGNMENT = re.compile(  # password=pw, ?api_key=pw (DSN keywords, query strings, keywords)
    r"(?P<name>\b[A-Za-z][\w.-]*)(?P<sep>=)"
    r"(?P<value>'[^'\n]*'|\"[^\"\n]*\"|[^\s,;&'\"()\[\]{}<>]+)"
)
_QUOTED_KEY = re.compile(  # {'password': 'pw'} or {"token": "pw"} inside a message
    r"(?P<name>'[^'\n]{1,64}'|\"[^\"\n]{1,64}\")(?P<sep>\s*:\s*)"
    r"(?P<value>'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\""
    r"|[^\s,;&'\"()\[\]{}<>]+(?=\s*[,}\]]|$))"  # unquoted: only where a dict value would end
)
_BEARER = re.compile(r"\b(?P<scheme>Bearer\s+)(?P<value>[A-Za-z0-9._~+/=-]+)")


def normalized(name: str) -> str:
    """``X-API-Key``, ``api_key`` and ``apiKey`` all become ``apikey``."""
    return name.lower().replace("-", "").replace("_", "")


class _Hidden:
    """Stands in for a secret in a masked copy: its repr is ``***``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return REDACTED


HIDDEN = _Hidden()


class MaskedObject:
    """A dataclass or pydantic model shown as ``Name(field=value, ...)`` with secrets masked."""

    __slots__ = ("name", "fields")

    def __init__(self, name: str, fields: list[tuple[str, Any]]) -> None:
        self.name = name
        self.fields = fields

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in self.fields)
        return f"{self.name}({inner})"


class Redactor:
    """Decides which names look secret, and makes the :class:`Redaction` of some arguments."""

    def __init__(self, secret_names: Iterable[str] = DEFAULT_SECRET_NAMES) -> None:
        self.secret_names = tuple(dict.fromkeys(normalized(name) for name in secret_names if name))

    def is_secret(self, name: str) -> bool:
        """True for a name whose value is secret (``password``, ``X-API-Key``, ``apiKey``)."""
        key = normalized(name)
        return any(secret in key for secret in self.secret_names) or _is_auth(key)

    def redaction(
        self, arguments: Mapping[str, Any], known_secrets: Iterable[str] = ()
    ) -> Redaction:
        """The redaction of these arguments, plus secrets known from elsewhere (a path)."""
        return Redaction(self, arguments, known_secrets)


def _is_auth(key: str) -> bool:
    """``auth``, ``basic_auth``, ``proxyAuth``: a (user, password) pair or a whole credential."""
    return key.endswith("auth")


class Redaction:
    """The secrets of one call's arguments, the arguments masked, and ``scrub`` for other text."""

    def __init__(
        self, redactor: Redactor, arguments: Mapping[str, Any], known_secrets: Iterable[str] = ()
    ) -> None:
        self._redactor = redactor
        #: Every secret value found, as text (any length; short ones are only hidden in place).
        self.secrets: set[str] = set()
        for secret in known_secrets:
            self._add_secret(secret)
        self._pattern: re.Pattern[str] | None = None
        self._budget = _SEARCH_VALUES
        seen: set[int] = set()
        for name, value in arguments.items():
            self._search(name, value, 0, seen)
        #: The arguments as they may be shown: secrets replaced by ``***``.
        self.arguments: dict[str, Any] = {
            name: self._masked(name, value, 0) for name, value in arguments.items()
        }

    # -- finding secrets --------------------------------------------------------------------

    def _search(self, name: str | None, value: Any, depth: int, seen: set[int]) -> None:
        self._budget -= 1
        if self._budget < 0:
            return
        if name is not None and self._redactor.is_secret(name):
            if _is_auth(normalized(name)) and _is_pair(value):
                self._add_secret(value[1])
            else:
                self._add_secret(value)
            return
        if depth > _SEARCH_DEPTH or id(value) in seen:
            return
        if isinstance(value, str):
            self._search_text(value)
            return
        if isinstance(value, bytes):
            self._search_text(value.decode("utf-8", "replace"))
            return
        secret_value = _secret_value(value)
        if secret_value is not None:
            self._add_secret(secret_value)
            return
        seen.add(id(value))
        for key, item in _children(value, _SEARCH_ITEMS):
            self._search(key, item, depth + 1, seen)

    def _search_text(self, text: str) -> None:
        for match in _URL_USERINFO.finditer(text):
            password = match["password"]
            self._add_secret(match["user"] if password is None else password)
        for pattern in (_ASSIGNMENT, _QUOTED_KEY):
            for match in pattern.finditer(text):
                if self._redactor.is_secret(match["name"].strip("'\"")):
                    self._add_secret(match["value"].strip("'\""))
        for match in _BEARER.finditer(text):
            self._add_secret(match["value"])

    def _add_secret(self, value: Any, depth: int = 0) -> None:
        """Remember ``value`` (and what it holds) as secret text."""
        if depth > _SEARCH_DEPTH or value is None or isinstance(value, bool):
            return
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, (int, float)):
            value = str(value)
        if isinstance(value, str):
            if value and value != REDACTED:
                self.secrets.add(value)
                self.secrets.add(repr(value)[1:-1])  # as it shows inside a repr
                scheme, _, credential = value.partition(" ")
                if scheme.isalpha() and credential and " " not in credential:
                    self.secrets.add(credential)  # "Bearer abc": "abc" is secret alone too
                self._pattern = None
            return
        secret_value = _secret_value(value)
        if secret_value is not None:
            self._add_secret(secret_value, depth + 1)
            return
        for _, item in _children(value, _SEARCH_ITEMS):
            self._add_secret(item, depth + 1)

    # -- showing ----------------------------------------------------------------------------

    def _masked(self, name: str | None, value: Any, depth: int) -> Any:
        """A copy of ``value`` to show: secret parts replaced, only as much as can be shown."""
        if name is not None and self._redactor.is_secret(name):
            if _is_auth(normalized(name)) and _is_pair(value):
                return (self._masked(None, value[0], depth + 1), HIDDEN)
            return HIDDEN
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, bytes):
            text = value.decode("utf-8", "replace")
            scrubbed = self.scrub(text)
            return value if scrubbed == text else scrubbed.encode("utf-8")
        if depth > _SHOWN_DEPTH:
            return value  # deeper than the display goes: shown as "..."
        kind = type(value)
        if kind is dict:
            return {
                key: self._masked(_key_name(key), item, depth + 1)
                for key, item in itertools.islice(value.items(), _SHOWN_ITEMS)
            }
        if kind in (list, tuple, set, frozenset):
            masked = [self._masked(*child, depth + 1) for child in _children(value, _SHOWN_ITEMS)]
            return kind(masked)
        names = _fields(value)
        if names is not None:
            fields = [
                (name, self._masked(name, getattr(value, name, None), depth + 1))
                for name in names[:_SHOWN_ITEMS]
            ]
            return MaskedObject(kind.__name__, fields)
        return value  # its own repr; scrub() still hides the secrets found

    def scrub(self, text: str) -> str:
        """``text`` with credentials in URLs, secret assignments and found secrets hidden."""
        text = _URL_USERINFO.sub(_hide_userinfo, text)
        text = _ASSIGNMENT.sub(self._hide_assignment, text)
        text = _QUOTED_KEY.sub(self._hide_assignment, text)
        text = _BEARER.sub(lambda match: match["scheme"] + REDACTED, text)
        pattern = self._secrets_pattern()
        return text if pattern is None else pattern.sub(REDACTED, text)

    def path(self, path: str) -> str:
        """A request path with each segment that is a secret (however short) hidden."""
        segments = [REDACTED if part in self.secrets else part for part in path.split("/")]
        return self.scrub("/".join(segments))

    def _hide_assignment(self, match: re.Match[str]) -> str:
        if not self._redactor.is_secret(match["name"].strip("'\"")):
            return match[0]
        return match["name"] + match["sep"] + REDACTED

    def _secrets_pattern(self) -> re.Pattern[str] | None:
        if self._pattern is None:
            long_enough = sorted(
                (secret for secret in self.secrets if len(secret) >= MIN_SCRUBBED_LENGTH),
                key=len,
                reverse=True,  # a secret that contains another goes first
            )
            if not long_enough:
                return None
            self._pattern = re.compile("|".join(map(re.escape, long_enough)))
        return self._pattern


def _hide_userinfo(match: re.Match[str]) -> str:
    if match["password"] is not None:
        return f"{match['scheme']}{match['user']}:{REDACTED}@"
    return f"{match['scheme']}{REDACTED}@"  # a lone user part is often a token


def _is_pair(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and len(value) == 2


def _key_name(key: Any) -> str | None:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return None


def _secret_value(value: Any) -> Any:
    """What a pydantic ``SecretStr`` (or anything with ``get_secret_value()``) holds."""
    getter = getattr(type(value), "get_secret_value", None)
    if not callable(getter):
        return None
    try:
        return getter(value)
    except Exception:
        return None


def _fields(value: Any) -> list[str] | None:
    """The field names of a dataclass instance or a pydantic model, else None."""
    if isinstance(value, type):
        return None
    if dataclasses.is_dataclass(value):
        return [field.name for field in dataclasses.fields(value)]
    fields = getattr(type(value), "model_fields", None)
    if isinstance(fields, dict) and hasattr(value, "model_dump"):
        return list(fields)
    return None


def _children(value: Any, limit: int) -> Iterator[tuple[str | None, Any]]:
    """(name, item) pairs inside a container, at most ``limit``; names for keys and fields.

    A ``(name, value)`` pair in a list, such as a header ``("Authorization", "Bearer x")``,
    names its value too.
    """
    if isinstance(value, Mapping):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, (list, tuple, set, frozenset)):
        if (
            isinstance(value, tuple)
            and len(value) == 2
            and _key_name(value[0]) is not None
            and not isinstance(value[1], (list, tuple, dict))
        ):
            yield None, value[0]
            yield _key_name(value[0]), value[1]
            return
        items = ((None, item) for item in value)
    else:
        names = _fields(value)
        if names is None:
            return
        items = ((name, getattr(value, name, None)) for name in names)
    for count, (key, item) in enumerate(items):
        if count >= limit:
            return
        if key is not None:
            yield _key_name(key), item
        else:
            yield None, item
