"""Cleaning a patrol's track (pure): which fixes make the line, and the line itself.

A fix is kept unless
- its reported accuracy is worse than ``max_accuracy_m`` (flag ``accuracy``: indoor and
  urban-canyon fixes), or
- it was taken during a pause (flag ``paused``), or
- reaching it from the last kept fix needs more than ``max_speed_mps`` (flag ``speed``: a jump
  of 2 km in 10 s). Speeds are geodesic distance over time between the fix and the last *kept*
  one, so one wild fix does not also condemn the good fix after it.

The kept fixes, in time order, make one line per stretch between pauses; a stretch of one fix
makes no line. Distances are geodesic on the WGS84 ellipsoid (``geo.measure.GEOD``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shapely.geometry import LineString, MultiLineString

from geo.measure import GEOD

__all__ = ["CleanTrack", "clean_track"]


@dataclass(frozen=True)
class CleanTrack:
    flags: list[str | None]
    """Per fix, in the input order: None (kept), 'accuracy', 'speed' or 'paused'."""
    stretches: list[list[int]]
    """Indexes of the kept fixes, one list per stretch between pauses (time order)."""

    def line(self, lon: Sequence[float], lat: Sequence[float]) -> MultiLineString | None:
        parts = [LineString([(lon[i], lat[i]) for i in s]) for s in self.stretches if len(s) >= 2]
        return MultiLineString(parts) if parts else None

    @property
    def kept(self) -> int:
        return sum(1 for f in self.flags if f is None)


def clean_track(
    t: Sequence[float],
    lon: Sequence[float],
    lat: Sequence[float],
    accuracy: Sequence[float],
    pauses: Sequence[tuple[float, float]] = (),
    *,
    max_accuracy_m: float = 50.0,
    max_speed_mps: float = 50.0,
) -> CleanTrack:
    """``t``: seconds (any epoch), strictly increasing; ``pauses``: closed [from, to) intervals
    in the same seconds, sorted."""
    n = len(t)
    flags: list[str | None] = [None] * n
    stretches: list[list[int]] = []
    current: list[int] = []
    last: int | None = None
    p = 0
    stretch_of_last = -1
    for i in range(n):
        while p < len(pauses) and pauses[p][1] <= t[i]:
            p += 1
        if p < len(pauses) and pauses[p][0] <= t[i] < pauses[p][1]:
            flags[i] = "paused"
            continue
        if accuracy[i] > max_accuracy_m:
            flags[i] = "accuracy"
            continue
        if last is not None:
            _, _, d = GEOD.inv(lon[last], lat[last], lon[i], lat[i])
            dt = t[i] - t[last]
            if dt <= 0 or d / dt > max_speed_mps:
                flags[i] = "speed"
                continue
        if p != stretch_of_last and current:
            stretches.append(current)
            current = []
        stretch_of_last = p
        current.append(i)
        last = i
    if current:
        stretches.append(current)
    return CleanTrack(flags, stretches)
