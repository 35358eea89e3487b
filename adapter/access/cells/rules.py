"""The disclosure-control rules of one period's cells: what is published, what is suppressed.

For one attribute and one period, each group's cell (``groups``) is computed from the
values its sensors observed in ``[period.start, period.end)``, then judged by the rules of
statistical disclosure control, in this order:

1. **threshold**: fewer than ``min_group_size`` distinct sensors contributed. The cell says
   "suppressed, threshold", which tells "fewer than n sensors", never how many.
2. **dominance** ((n, k) rule, for ``sum`` and ``avg``): the ``dominance_top`` largest
   contributions (the absolute value of each sensor's sum of readings in the cell) make more
   than ``dominance_share`` of the sum of all contributions. Such a cell is close to one
   sensor's (or a pair's) own value, even over many sensors.
3. **secondary**: with a ``total``, the total minus the published districts gives the union
   of the suppressed ones. That union must itself pass rules 1 and 2 (exactly one suppressed
   district never does: it *is* that district). Else the smallest published districts (by
   sensor count, then value) are suppressed too until it does; when that takes more than one
   more district, the total is suppressed instead (one lost figure rather than several).

A suppressed cell carries its rule and neither its value nor its sensor count. Published
values are exact, or noisy when the definition asks for noise (``noise``): noise is drawn
here, once, and the caller stores the cell (``store``), so it is never drawn again.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from adapter.access.cells.exceptions import CellsError
from adapter.access.cells.groups import TOTAL, group_names, group_of
from adapter.access.cells.noise import NoiseSource, laplace, scale_for
from adapter.access.cells.periods import Period, check_period
from adapter.access.cells.series import SensorSeries

if TYPE_CHECKING:
    from adapter.access.model import Aggregation

__all__ = ["Cell", "DOMINANCE", "SECONDARY", "Status", "THRESHOLD", "cell_json", "compute_cells", "dominated"]

THRESHOLD = "threshold"
DOMINANCE = "dominance"
SECONDARY = "secondary"

Status = Literal["published", "suppressed", "pending"]

# sensor -> its readings in the cell
_Contributions = Mapping[str, list[float]]


@dataclass(frozen=True, slots=True)
class Cell:
    """One group's figure for one attribute and one period.

    ``published``: ``value`` and ``sensors`` (distinct sensors that contributed) are set.
    ``suppressed``: ``rule`` says which (``threshold``, ``dominance``, ``secondary``), the
    rest is None. ``pending``: the period is not published yet (nothing is computed).
    """

    group: str
    period: Period
    attribute: str
    status: Status
    value: float | None = None
    sensors: int | None = None
    rule: str | None = None


def _fsum(values: Iterable[float]) -> float:
    """An exact float sum (independent of order), refused rather than infinite."""
    try:
        return math.fsum(values)
    except OverflowError as exc:  # readings near 1e308: no sensor sends those
        raise CellsError("the readings of a cell add up past the range of a float") from exc


def dominated(sums: list[float], top: int, share: float) -> bool:
    """The (n, k) rule: do the ``top`` largest ``|sums|`` make more than ``share`` of them all?"""
    sizes = sorted((abs(s) for s in sums), reverse=True)
    whole = _fsum(sizes)
    return whole > 0 and _fsum(sizes[:top]) > share * whole


def _primary(aggregation: Aggregation, contributions: _Contributions) -> str | None:
    """The primary rule a group breaks (threshold first), or None."""
    if len(contributions) < aggregation.min_group_size:
        return THRESHOLD
    sums = [_fsum(values) for values in contributions.values()]
    if dominated(sums, aggregation.dominance_top, aggregation.dominance_share):
        return DOMINANCE
    return None


def _exact(method: str, contributions: _Contributions) -> float:
    readings = [v for sensor in sorted(contributions) for v in contributions[sensor]]
    total = _fsum(readings)
    return total if method == "sum" else total / len(readings)


def _noisy(aggregation: Aggregation, contributions: _Contributions, noise: NoiseSource) -> float:
    assert aggregation.noise_epsilon is not None and aggregation.contribution_bounds is not None
    lower, upper = aggregation.contribution_bounds
    own = [
        _fsum(values) if aggregation.method == "sum" else _fsum(values) / len(values)
        for _, values in sorted(contributions.items())
    ]
    clamped = [min(max(c, lower), upper) for c in own]
    width = upper - lower
    if aggregation.method == "sum":
        return noise(_fsum(clamped), scale_for(width, aggregation.noise_epsilon))
    n = len(clamped)
    return noise(_fsum(clamped) / n, scale_for(width / n, aggregation.noise_epsilon))


def _union(groups: Mapping[str, _Contributions], names: set[str] | list[str]) -> dict[str, list[float]]:
    merged: dict[str, list[float]] = {}
    for name in names:
        for sensor, values in groups[name].items():
            merged.setdefault(sensor, []).extend(values)
    return merged


def _secondary(aggregation: Aggregation, groups: Mapping[str, _Contributions], rules: dict[str, str | None]) -> None:
    """Suppress more (districts or the total, in ``rules``) until no suppressed district can
    be derived from the total and the published districts."""
    if rules[TOTAL] is not None:
        return  # without a total nothing links the districts
    districts = [d.name for d in aggregation.districts]
    hidden = {name for name in districts if rules[name] is not None}

    def derivable_is_safe(names: set[str]) -> bool:
        union = _union(groups, names)
        return not union or _primary(aggregation, union) is None

    if not hidden or derivable_is_safe(hidden):
        return
    order = {name: index for index, name in enumerate(districts)}
    candidates = sorted(
        (name for name in districts if name not in hidden),
        key=lambda name: (len(groups[name]), _exact(aggregation.method, groups[name]), order[name]),
    )
    added: list[str] = []
    while not derivable_is_safe(hidden | set(added)) and candidates:
        added.append(candidates.pop(0))
    if len(added) > 1 or not derivable_is_safe(hidden | set(added)):
        rules[TOTAL] = SECONDARY
        return
    for name in added:
        rules[name] = SECONDARY


def compute_cells(
    aggregation: Aggregation,
    attribute: str,
    period: Period,
    series: Mapping[str, SensorSeries],
    *,
    noise: NoiseSource | None = None,
) -> tuple[Cell, ...]:
    """Every group's cell of ``attribute`` over ``period``, published or suppressed.

    ``series``: sensor (entity id) -> its ``SensorSeries``; only points with
    ``period.start <= observedAt < period.end`` count. ``noise``: the noise source when the
    definition asks for noise (default: OpenDP's Laplace mechanism). ``PeriodsError`` for a
    period that is not one of the definition's; ``CellsError`` for readings past a float.
    """
    if aggregation.method not in ("avg", "sum"):
        raise ValueError(f"cells are avg or sum, not {aggregation.method!r}")
    check_period(aggregation, period)
    names = group_names(aggregation)
    groups: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    for sensor in sorted(series):
        one = series[sensor]
        group = group_of(aggregation, one.location)
        if group is None:
            continue
        values = [v for v, t in one.points.get(attribute, ()) if period.start <= t < period.end and math.isfinite(v)]
        if values:
            groups[group][sensor] = values
    if TOTAL in groups:
        groups[TOTAL] = _union(groups, [d.name for d in aggregation.districts])
    rules = {name: _primary(aggregation, groups[name]) for name in names}
    if TOTAL in groups:
        _secondary(aggregation, groups, rules)
    draw = noise if noise is not None else laplace
    cells = []
    for name in names:
        rule = rules[name]
        if rule is not None:
            cells.append(Cell(name, period, attribute, "suppressed", rule=rule))
            continue
        contributions = groups[name]
        value = (
            _exact(aggregation.method, contributions)
            if aggregation.noise_epsilon is None
            else _noisy(aggregation, contributions, draw)
        )
        cells.append(Cell(name, period, attribute, "published", value=value, sensors=len(contributions)))
    return tuple(cells)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _largest(top: int) -> str:
    return "the largest contribution makes" if top == 1 else f"the {top} largest contributions make"


def cell_json(cell: Cell, aggregation: Aggregation) -> dict[str, Any]:
    """A cell as a gateway may answer it, with the reason of a suppression in plain words."""
    out: dict[str, Any] = {
        "group": cell.group,
        "attribute": cell.attribute,
        "method": aggregation.method,
        "start": _iso(cell.period.start),
        "end": _iso(cell.period.end),
        "status": cell.status,
    }
    if cell.status == "published":
        out.update(value=cell.value, sensors=cell.sensors)
        if aggregation.noise_epsilon is not None:
            out["noise"] = {"mechanism": "laplace", "epsilon": aggregation.noise_epsilon}
    elif cell.status == "suppressed":
        out["rule"] = cell.rule
        out["reason"] = {
            THRESHOLD: f"fewer than {aggregation.min_group_size} sensors contributed",
            DOMINANCE: f"{_largest(aggregation.dominance_top)} more than {aggregation.dominance_share * 100:g}% "
            "of the cell",
            SECONDARY: "suppressed so that the total and the published cells do not reveal a suppressed one",
        }.get(cell.rule or "", "suppressed")
    else:
        out["reason"] = "the period is not closed yet, or still waits for late data"
    return out
