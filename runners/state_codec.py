"""Deprecated alias of :mod:`runners.live.state_codec`, kept for one release; import from there."""

from __future__ import annotations

from runners.live.state_codec import ALLOWED_MODULES, decode, encode

__all__ = ["ALLOWED_MODULES", "encode", "decode"]
