"""Workflow declarations longhaul reads: each workflow's name and its signals with their payload models.

The catalog needs them (to start a workflow by name, to validate a signal's payload before it is sent),
and the SDK keeps them only in private structures. So longhaul's workflows are declared with
:func:`defn` and :func:`signal`, which apply ``workflow.defn`` / ``workflow.signal`` unchanged and also
record what was declared on the class itself (no module state: workflow modules are re-imported in the
sandbox).

>>> @defn(name="approval")
... class ApprovalWorkflow:
...     @signal(name="approval.decided")
...     async def decided(self, decision: Decision) -> None: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, get_args, get_type_hints

from pydantic import BaseModel
from temporalio import workflow

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_WORKFLOW = "__longhaul_workflow__"
_SIGNAL = "__longhaul_signal__"


@dataclass(frozen=True)
class Declared:
    """What :func:`defn` recorded of a workflow class."""

    name: str
    signal_handlers: dict[str, Callable[..., Any]]

    @property
    def signals(self) -> list[str]:
        return sorted(self.signal_handlers)

    def signal_schema(self, signal: str) -> type[BaseModel] | None:
        """The pydantic model signal ``signal`` takes, optional or not (``None``: no argument, or not a
        model). Raises KeyError if the workflow declares no such signal."""
        hints = {k: v for k, v in get_type_hints(self.signal_handlers[signal]).items() if k != "return"}
        hint = next(iter(hints.values()), None)
        for model in (hint, *get_args(hint)):  # ``Model | None``: the model
            if isinstance(model, type) and issubclass(model, BaseModel):
                return model
        return None


def defn(*, name: str, **options: Any) -> Callable[[type[T]], type[T]]:
    """``@workflow.defn(name=..., **options)``, recording the name and the :func:`signal` handlers."""

    def declare(cls: type[T]) -> type[T]:
        defined = workflow.defn(name=name, **options)(cls)
        handlers = {
            getattr(member, _SIGNAL): member for member in vars(cls).values() if hasattr(member, _SIGNAL)
        }
        setattr(defined, _WORKFLOW, Declared(name, handlers))
        return defined

    return declare


def signal(*, name: str) -> Callable[[F], F]:
    """``@workflow.signal(name=...)``, recorded for the class's :func:`defn`."""

    def declare(handler: F) -> F:
        setattr(handler, _SIGNAL, name)
        return workflow.signal(name=name)(handler)

    return declare


def declared(workflow_cls: type) -> Declared:
    """What :func:`defn` recorded of ``workflow_cls``; ValueError if it was not declared with it."""
    found = vars(workflow_cls).get(_WORKFLOW)
    if not isinstance(found, Declared):
        raise ValueError(f"{workflow_cls.__qualname__} is not declared with longhaul.sdk.defn")
    return found
