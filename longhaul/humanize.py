"""Numbers as people write them, in records, logs, the dashboard and the Temporal UI."""

from __future__ import annotations


def duration(seconds: float) -> str:
    """A duration as people write it: 250 ms, 2.5 s, 1 min 30 s, 24 h, 2 d 4 h (two units at most)."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{round(seconds, 1):g} s"
    whole = round(seconds)
    for unit, size, smaller, small in (("d", 86_400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1)):
        if whole >= size * (2 if unit == "d" else 1):
            big, rest = divmod(whole, size)
            return f"{big} {unit}" + (f" {rest // small} {smaller}" if rest // small else "")
    return f"{whole} s"
