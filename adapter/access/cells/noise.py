"""Calibrated noise for published cells, through OpenDP (optional: ``pip install opendp==0.16.0``).

When a cell definition sets ``noise_epsilon``, each published value gets Laplace noise of
scale ``sensitivity / epsilon``, drawn once, when the cell is computed, and stored with it:
asking again returns the same noisy value, so repeating a query cannot average the noise
away. The sensitivity is what one sensor can change in the cell, its contribution clamped to
the definition's ``contribution_bounds`` ``[lower, upper]``: ``upper - lower`` for a sum,
``(upper - lower) / n`` for an average over ``n`` sensors (the mean of the sensors' own
means, each clamped). Neighbouring data sets are "the same sensors, one sensor's readings in
the period changed": the sensor set and counts are taken as public (the sensor registry is).

OpenDP calibrates and draws the noise (its Laplace mechanism samples without the
floating-point flaws of a naive ``random`` implementation); this module also checks, with
OpenDP's own privacy map, that the measurement spends no more than ``epsilon``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from adapter.access.cells.exceptions import NoiseUnavailable

__all__ = ["NoiseSource", "laplace", "noise_available", "privacy_spent", "scale_for"]

#: (value, scale) -> the value with Laplace noise of that scale; tests pass their own
NoiseSource = Callable[[float, float], float]


def noise_available() -> bool:
    """Whether OpenDP can be imported here."""
    try:
        _opendp()
    except NoiseUnavailable:
        return False
    return True


def scale_for(sensitivity: float, epsilon: float) -> float:
    """The Laplace scale that spends ``epsilon`` on a query of this ``sensitivity``."""
    if sensitivity < 0 or epsilon <= 0:
        raise ValueError("sensitivity must be >= 0 and epsilon > 0")
    return sensitivity / epsilon


def laplace(value: float, scale: float) -> float:
    """``value`` plus Laplace noise of ``scale``, drawn by OpenDP (``NoiseUnavailable`` without it)."""
    if scale == 0:
        return value
    return float(_measurement(scale)(value))


def privacy_spent(sensitivity: float, scale: float) -> float:
    """The epsilon OpenDP's privacy map gives for this sensitivity and scale (for checks)."""
    return float(_measurement(scale).map(sensitivity))


def _opendp() -> Any:
    try:
        import opendp.prelude as dp
    except ImportError as exc:  # an optional dependency: say which package to install
        raise NoiseUnavailable("noise needs OpenDP: pip install opendp==0.16.0") from exc
    dp.enable_features("contrib")
    return dp


@lru_cache(maxsize=128)
def _measurement(scale: float) -> Any:
    dp = _opendp()
    space = dp.atom_domain(T=float, nan=False), dp.absolute_distance(T=float)
    return dp.m.make_laplace(*space, scale=scale)
