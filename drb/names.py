"""Matching user-typed names (strategies, tickers, parameters) against the known ones."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["did_you_mean", "match_name"]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``" (did you mean 'X'?)"`` suffix for the closest choice, or ``""`` when none is close.

    Matching ignores case; the suggestion is spelled as in ``choices``.
    """
    options = [str(c) for c in choices]
    lowered = {c.lower(): c for c in options}
    close = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


def match_name(word: str, choices: Iterable[str]) -> str | None:
    """The choice equal to ``word`` ignoring case (the exact spelling wins), or None."""
    options = [str(c) for c in choices]
    if word in options:
        return word
    folded = [c for c in options if c.lower() == str(word).lower()]
    return folded[0] if len(folded) == 1 else None
