"""Lazy package exports: a package names its public objects without importing their modules.

A package that should stay cheap to import (``strategies`` without backtrader, ``runners.report``
without matplotlib) maps each public name to the module defining it and installs the
``__getattr__``/``__dir__`` pair returned by :func:`lazy_exports` (PEP 562).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, namespace: dict[str, Any],
                 exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package``.

    Parameters
    ----------
    package : str
        The package's dotted name (for the error message).
    namespace : dict
        The package's ``globals()``: a name is cached there on first use.
    exports : Mapping[str, str]
        Public name -> dotted name of the module that defines it.

    Returns
    -------
    (getattr, dir) : tuple of callables
        Assign them to ``__getattr__`` and ``__dir__`` of the package.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
