"""The parsers' hot-path shortcuts give exactly what the general code gave."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from adapter.exceptions import EventError
from adapter.mapping.entities import get_path, iso
from adapter.sources._common import DEFAULT_LIMITS, field, parse_time


def reference_field(obj: Any, path: str, kind: Any, *, required: bool = True) -> Any:
    """``field`` as it was before its dict fast path."""
    current = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current or current[part] is None:
            if required:
                raise EventError("missing_field", f"field {path!r} is missing")
            return None
        current = current[part]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(current, kind) or (isinstance(current, bool) and bool not in kinds):
        expected = "/".join(t.__name__ for t in kinds)
        raise EventError("missing_field", f"field {path!r} should be {expected}, got {type(current).__name__}")
    return current


DOC = {"a": {"b": {"c": 1, "t": True, "s": "x", "n": None, "f": 1.5, "m": {"k": "v"}, "l": [1]}}, "z": 0}
PATHS = ["a.b.c", "a.b.t", "a.b.s", "a.b.n", "a.b.f", "a.b.m", "a.b.l", "a.b.missing", "a.x.c", "z", "z.y", "a"]
KINDS: list[Any] = [int, str, bool, float, (int, float), (str, int), Mapping, list, dict, (bool, int)]


def outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return ("ok", fn(*args, **kwargs))
    except EventError as exc:
        return ("error", exc.reason, str(exc))


@pytest.mark.parametrize("doc", [DOC, MappingProxyType({"a": MappingProxyType(DOC["a"]), "z": 0})])
@pytest.mark.parametrize("required", [True, False])
def test_field_matches_the_general_code(doc: Any, required: bool) -> None:
    for path in PATHS:
        for kind in KINDS:
            assert outcome(field, doc, path, kind, required=required) == outcome(
                reference_field, doc, path, kind, required=required
            ), (path, kind)


def test_parse_time_repeats_give_the_same_answer_and_the_future_check_each_time() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    text = "2026-11-21T11:59:59.123456789Z"
    first = parse_time(text, "time", DEFAULT_LIMITS, now)
    assert (
        parse_time(text, "rxInfo.nsTime", DEFAULT_LIMITS, now)
        == first
        == datetime(2026, 11, 21, 11, 59, 59, 123456, tzinfo=UTC)
    )
    with pytest.raises(EventError) as caught:
        parse_time(text, "time", DEFAULT_LIMITS, now - timedelta(hours=1))  # now the same text is in the future
    assert caught.value.reason == "future_timestamp"
    with pytest.raises(EventError):
        parse_time("not a time", "time", DEFAULT_LIMITS, now)
    with pytest.raises(EventError):
        parse_time("not a time", "time", DEFAULT_LIMITS, now)  # a failure is not remembered as a success


def test_iso_of_equal_instants_in_other_zones_is_not_mixed_up() -> None:
    from datetime import timezone

    utc = datetime(2026, 11, 21, 12, 0, 0, 5000, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert iso(utc) == "2026-11-21T12:00:00.005Z"
    assert iso(paris) == "2026-11-21T13:00:00.005+01:00"
    assert iso(utc) == "2026-11-21T12:00:00.005Z"


def test_get_path_top_level_and_nested() -> None:
    data = {"a": 1, "n": None, "b": {"c": [10, 20]}}
    assert [get_path(data, p) for p in ("a", "n", "x", "b.c.1", "b.c.5", "b.x")] == [1, None, None, 20, None, None]
    assert get_path(MappingProxyType(data), "a") == 1
