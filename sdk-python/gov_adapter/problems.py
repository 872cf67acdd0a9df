"""Field problems gathered at once, then raised as one ``invalid-input``.

An applicant fixes every field in one go when told every problem together: check all fields,
``add`` each problem, and ``raise_if_any`` at the end (or return ``as_list`` from ``validate``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem with one field, in the contract's terms (``field-error``)."""

    field: str
    code: str
    message: str


class Problems:
    """Problems with an application's fields, in the order found."""

    def __init__(self) -> None:
        self._items: list[Problem] = []

    def add(self, field: str, code: str, message: str) -> "Problems":
        self._items.append(Problem(field, code, message))
        return self

    def extend(self, problems: "list[Problem] | Problems") -> "Problems":
        self._items.extend(problems if isinstance(problems, list) else problems._items)
        return self

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def as_list(self) -> list[Problem]:
        return list(self._items)

    def field_errors(self) -> list:
        """The problems as the bindings' ``FieldError`` records (what ``validate`` returns)."""
        from wit_world.imports import types  # imported at init by .host; a dict lookup now

        return [types.FieldError(p.field, p.code, p.message) for p in self._items]

    def raise_if_any(self) -> None:
        """Raise every problem at once as the contract's ``invalid-input``."""
        if self._items:
            from .host import AdapterFailure

            raise AdapterFailure.invalid_input(self._items)
