"""Text that app storage (and Temporal's payloads) can hold: UTF-8 encodable, without NUL.

JSON lets a client send a lone surrogate (``"\\ud800"``) or a NUL (``"\\u0000"``) in any string; Python's
``json`` module turns them into ``str`` values that SQLite's and PostgreSQL's drivers then fail to write,
which surfaced as a 500 after validation had passed. Every string an API body carries to storage is
checked here first, so the caller gets a 422 naming the field, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

_PROBLEM = "text must be valid Unicode without lone surrogates or NUL characters"


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unstorable(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The paths of the strings (keys included) in a JSON value that storage cannot hold."""
    if isinstance(value, str):
        if not _storable(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not _storable(key):
                yield (*path, key.encode("utf-8", "backslashreplace").decode())
            else:
                yield from _unstorable(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unstorable(item, (*path, index))


def check_json(value: Any) -> Any:
    """A pydantic after-validator for JSON values: refuses unstorable strings, each error at its path."""
    errors = [
        InitErrorDetails(type=PydanticCustomError("unstorable_text", _PROBLEM), loc=path, input="")
        for path in _unstorable(value)
    ]
    if errors:
        raise ValidationError.from_exception_data("text", errors)
    return value


def check_text(value: str) -> str:
    if not _storable(value):
        raise PydanticCustomError("unstorable_text", _PROBLEM)
    return value


StoredText = Annotated[str, AfterValidator(check_text)]
"""A string field whose value is written to storage."""
