"""Trigger filters: a subscription starts only for the events whose payload matches a CEL expression,
e.g. ``payload.total > 1000 && payload.currency == "EUR"``.

CEL (the Common Expression Language) is evaluated by ``common-expression-language``, a binding of the
Rust implementation: no Python is evaluated, an expression has no I/O and always ends, and it is
compiled once. The expression sees ``payload`` (the event's payload as JSON) and ``tenant``.

Checked when the catalog is built (:func:`compile_filter`): a syntax error, or a ``payload.<field>``
that the event's schema does not have, is a startup error naming the subscription.
"""

from __future__ import annotations

import functools
import logging
import re
import types
import typing
from typing import Any

import cel
from pydantic import BaseModel

log = logging.getLogger("longhaul.filters")

_STRINGS = re.compile(r"""'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*\"""")
_PATHS = re.compile(r"\bpayload((?:\.[A-Za-z_]\w*)+)")


class FilterError(ValueError):
    """A filter that cannot run against its event's schema."""


@functools.cache
def _program(expression: str) -> Any:
    return cel.compile(expression)


def compile_filter(expression: str, schema: type[BaseModel]) -> None:
    """Compile ``expression`` and check every ``payload.a.b`` it names against ``schema``; raises
    FilterError saying what is wrong."""
    try:
        _program(expression)
    except Exception as error:  # the binding raises ValueError or its own parse error
        raise FilterError(f"filter {expression!r} does not compile: {error}") from error
    code = _STRINGS.sub('""', expression)  # a field name inside a string literal is not a field
    for match in _PATHS.finditer(code):
        _check_path(schema, match.group(1).lstrip(".").split("."), expression)


def _check_path(schema: type[BaseModel], path: list[str], expression: str) -> None:
    model: Any = schema
    for depth, name in enumerate(path):
        fields = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else None
        if fields is None:
            return  # a dict, a list or Any: CEL checks what is in it when it runs
        if name not in fields:
            known = ", ".join(sorted(fields))
            where = ".".join(["payload", *path[: depth + 1]])
            raise FilterError(f"filter {expression!r} names {where}: no such field (fields: {known})")
        model = _model_of(fields[name].annotation)


def _model_of(annotation: Any) -> Any:
    """The model an annotation holds (``Address | None`` → ``Address``), or the annotation itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        return models[0] if len(models) == 1 else Any
    return annotation


def matches(expression: str, payload: BaseModel, tenant: str) -> bool:
    """Whether the event passes the filter. An expression that fails on this payload (a field that is
    null, a comparison of mismatched types) does not match, and is logged."""
    try:
        result = _program(expression).execute({"payload": payload.model_dump(mode="json"), "tenant": tenant})
    except Exception as error:
        log.warning("filter %r failed on an event of tenant %s: %s", expression, tenant, error)
        return False
    return result is True
