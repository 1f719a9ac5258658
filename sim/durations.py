"""Durations and rates: seconds (float) inside, "25s", "10m", "4h", "30d" and "40/d" outside.

``parse_duration`` and ``parse_rate`` read what people write in scenario files and on the
command line; ``format_duration`` and ``format_rate`` write values back in a form that parses
to the very same float, so a scenario survives a round trip through its file unchanged;
``humanize`` rounds a measured duration for a person to read ("45.2s", "1h 30m").
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction

from .errors import SimError

__all__ = [
    "DAY", "HOUR", "format_duration", "format_rate", "humanize", "parse_duration", "parse_rate",
]

HOUR = 3600.0
DAY = 86400.0

#: Seconds per unit, under every spelling that ``parse_duration`` accepts.
_UNIT_SECONDS: dict[str, Fraction] = {}
for _names, _seconds in (
    (("ms", "msec", "msecs", "millisecond", "milliseconds"), Fraction(1, 1000)),
    (("s", "sec", "secs", "second", "seconds"), Fraction(1)),
    (("m", "min", "mins", "minute", "minutes"), Fraction(60)),
    (("h", "hr", "hrs", "hour", "hours"), Fraction(3600)),
    (("d", "day", "days"), Fraction(86400)),
    (("w", "wk", "wks", "week", "weeks"), Fraction(7 * 86400)),
):
    for _name in _names:
        _UNIT_SECONDS[_name] = _seconds

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_TERM = re.compile(rf"({_NUMBER})\s*([a-zA-Z]+)")
_TERMS = re.compile(rf"\s*(?:{_NUMBER}\s*[a-zA-Z]+\s*)+")
_PLAIN_NUMBER = re.compile(rf"\s*{_NUMBER}\s*")

#: Units used when writing values back, largest first.
_FORMAT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def _duration_error(value: object, field: str) -> SimError:
    return SimError(
        f"{field}: '{value}' is not a duration; write e.g. '25s', '10m', '4h', '30d' "
        "or a number of seconds"
    )


def _duration_seconds(text: str) -> Fraction | None:
    """The exact number of seconds ``text`` spells, or None if it is not a duration."""
    if _PLAIN_NUMBER.fullmatch(text):
        return Fraction(text.strip())
    if not _TERMS.fullmatch(text):
        return None
    total = Fraction(0)
    for number, unit in _TERM.findall(text):
        seconds = _UNIT_SECONDS.get(unit.lower())
        if seconds is None:
            return None
        total += Fraction(number) * seconds
    return total


def parse_duration(value: object, field: str) -> float:
    """Seconds in ``value``: a number of seconds (>= 0) or a string such as "500ms", "25s",
    "10m", "1.5h", "30d", "2w" or "1h30m" / "2d 3h".

    ``field`` names the scenario field in the error message when ``value`` is not a duration.
    """
    if isinstance(value, bool):
        raise _duration_error(value, field)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        exact = _duration_seconds(value)
        if exact is None:
            raise _duration_error(value, field)
        seconds = float(exact)
    else:
        raise _duration_error(value, field)
    if not math.isfinite(seconds) or seconds < 0:
        raise _duration_error(value, field)
    return seconds


def parse_rate(value: object, field: str) -> float:
    """Events per second in ``value``: a number (per second, >= 0) or a string "COUNT/UNIT"
    such as "40/d", "120/h", "2/m", "1/s", "4/day", "3/10m" or "40 per day"."""
    error = SimError(
        f"{field}: '{value}' is not a rate; write e.g. '40/d', '120/h', '2/m' "
        "or a number per second"
    )
    if isinstance(value, bool):
        raise error
    if isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str):
        text = value.strip()
        parts = re.split(r"\s*/\s*|\s+per\s+", text, maxsplit=1)
        if len(parts) == 1:
            if not _PLAIN_NUMBER.fullmatch(text):
                raise error
            rate = float(text)
        else:
            count_text, per_text = parts
            if not _PLAIN_NUMBER.fullmatch(count_text):
                raise error
            if per_text[:1].isalpha():
                per_text = "1" + per_text
            per = _duration_seconds(per_text)
            if per is None or per <= 0:
                raise error
            rate = float(Fraction(count_text) / per)
    else:
        raise error
    if not math.isfinite(rate) or rate < 0:
        raise error
    return rate


def _shortest(number: float, parses_back: Callable[[str], bool]) -> str:
    """The shortest decimal spelling of ``number`` for which ``parses_back(text)`` is true."""
    for digits in range(1, 18):
        text = f"{number:.{digits}g}"
        if "e" not in text and parses_back(text):
            return text
    return repr(number)


def format_duration(seconds: float) -> str:
    """A compact human form of ``seconds`` that ``parse_duration`` reads back exactly:
    "25s", "1h", "1h 30m", "2d 3h", "500ms"; "inf" for an infinite duration."""
    if math.isnan(seconds):
        return "nan"
    if math.isinf(seconds):
        return "inf" if seconds > 0 else "-inf"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        text = _shortest(seconds * 1000, lambda t: float(Fraction(t) / 1000) == seconds)
        if float(Fraction(text) / 1000) == seconds:
            return text + "ms"
        return f"{seconds!r}s"
    if seconds >= 1e15:
        return f"{seconds!r}s"
    whole = math.floor(seconds)
    secs = whole % 60
    rest = whole - secs
    parts = []
    for unit, size in _FORMAT_UNITS[:-1]:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    prefix = Fraction(whole - secs)
    if seconds != whole:
        text = _shortest(secs + (seconds - whole), lambda t: float(prefix + Fraction(t)) == seconds)
        parts.append(text + "s")
    elif secs:
        parts.append(f"{secs}s")
    text = " ".join(parts)
    exact = _duration_seconds(text)
    if exact is not None and float(exact) == seconds:
        return text
    return f"{seconds!r}s"


def format_rate(per_second: float) -> str:
    """A compact form of a rate that ``parse_rate`` reads back exactly: "40/d", "2/m",
    "1/s" (the shortest exact spelling over seconds, minutes, hours and days)."""
    if not math.isfinite(per_second):
        return f"{per_second!r}/s"
    if per_second < 0:
        return "-" + format_rate(-per_second)
    best = f"{per_second!r}/s"
    for unit, size in _FORMAT_UNITS:
        count = per_second * size
        text = _shortest(count, lambda t, s=size: float(Fraction(t) / s) == per_second)
        candidate = f"{text}/{unit}"
        if float(Fraction(text) / size) == per_second and len(candidate) < len(best):
            best = candidate
    return best


def humanize(seconds: float | None) -> str:
    """A measured duration as people read it: three significant figures under a minute
    ("0.993s", "45.2s"), whole seconds above ("1m 1s", "1h 30m", "14d"); "-" for none."""
    if seconds is None or math.isnan(seconds):
        return "-"
    if seconds < 60:
        return f"{seconds:.3g}s"
    return format_duration(round(seconds))
