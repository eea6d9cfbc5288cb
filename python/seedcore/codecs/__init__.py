"""The codec registry.  Each codec module exposes ``NAME``, ``validate_params``,
``expected_length``, ``encode`` and ``decode`` (the numpy reference decoder)."""

from __future__ import annotations

from . import ecq, prng, q4, q8, raw, stats

CODECS = {"raw": raw, "q8": q8, "q4": q4, "prng": prng, "stats": stats, "ecq": ecq}


def get_codec(name: str):
    """The codec module for ``name``; ValueError for an unknown name."""
    try:
        return CODECS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown codec {name!r} (known: {', '.join(CODECS)})") from None


__all__ = ["CODECS", "get_codec", "raw", "q8", "q4", "prng", "stats", "ecq"]
