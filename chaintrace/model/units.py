"""Sizes, rates and durations, parsed and printed the way people write them.

Sizes are binary as QEMU's own `-m 4G` is: `4G`, `4GiB` and `4 GiB` are all
4 * 2**30 bytes; `4GB` is decimal (4 * 10**9). Rates follow networking habit:
a lower-case `b`/`bit` is bits, an upper-case `B` is bytes, SI prefixes are
decimal (`1Gbit/s` = 125_000_000 B/s, `200MB/s` = 200_000_000 B/s) and IEC
prefixes binary (`128MiB/s`). Durations take `us`, `ms`, `s`, `min`, `h`.
"""

from __future__ import annotations

import math
import re

_NUMBER = r"(?P<num>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"

_SIZE_UNITS: dict[str, int] = {
    "": 1, "b": 1, "byte": 1, "bytes": 1,
    "k": 2**10, "kib": 2**10, "kb": 10**3,
    "m": 2**20, "mib": 2**20, "mb": 10**6,
    "g": 2**30, "gib": 2**30, "gb": 10**9,
    "t": 2**40, "tib": 2**40, "tb": 10**12,
}

# Prefix multipliers for rates; the case of the unit letter after it decides
# bits or bytes, so these are looked up case-insensitively.
_RATE_PREFIX: dict[str, int] = {
    "": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40,
}

_DURATION_UNITS: dict[str, float] = {
    "us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0,
}


class UnitError(ValueError):
    """A value that cannot be read as the size, rate or duration asked for; the message is one line."""


def _split(text: str, what: str, example: str) -> tuple[float, str]:
    """Return (number, unit text) of `text`, or raise UnitError naming `what`."""
    match = re.fullmatch(_NUMBER + r"\s*(?P<unit>[A-Za-z/]*)", text.strip())
    if match is None:
        raise UnitError(f"bad {what} {text!r}: expected a number and a unit, e.g. {example}")
    value = float(match["num"])
    if not math.isfinite(value):
        raise UnitError(f"bad {what} {text!r}: not a finite number")
    return value, match["unit"]


def parse_size(text: str) -> int:
    """Return the number of bytes written in `text` (`4GiB`, `512M`, `1.5 GB`, `4096`)."""
    value, unit = _split(text, "size", "4GiB or 512MiB")
    factor = _SIZE_UNITS.get(unit.lower())
    if factor is None:
        raise UnitError(f"bad size {text!r}: unknown unit {unit!r} (use B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)")
    return round(value * factor)


def parse_rate(text: str) -> float:
    """Return the bytes per second written in `text` (`1Gbit/s`, `200MB/s`, `100Mbps`, `128MiB/s`)."""
    value, unit = _split(text, "rate", "1Gbit/s or 200MB/s")
    match = re.fullmatch(r"(?P<prefix>[kKmMgGtT]i?)?(?P<kind>bit|bits|b|B|byte|bytes)(?P<per>/s|ps)", unit)
    if match is None:
        raise UnitError(
            f"bad rate {text!r}: unknown unit {unit!r} (write e.g. 1Gbit/s, 100Mbps, 200MB/s, 128MiB/s)"
        )
    factor = _RATE_PREFIX[(match["prefix"] or "").lower()]
    bits = match["kind"] in ("bit", "bits", "b")
    return value * factor / (8 if bits else 1)


def parse_duration(text: str) -> float:
    """Return the seconds written in `text` (`300ms`, `600s`, `10min`, `1.5h`)."""
    value, unit = _split(text, "duration", "300ms or 600s")
    factor = _DURATION_UNITS.get(unit.lower() if unit else "")
    if factor is None:
        raise UnitError(f"bad duration {text!r}: give a unit: us, ms, s, min or h")
    return value * factor


def parse_fraction(text: str) -> float:
    """Return the fraction in [0, 1] written in `text` (`0.3` or `30%`)."""
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = float(raw[:-1] if percent else raw)
    except ValueError:
        raise UnitError(f"bad fraction {text!r}: expected e.g. 0.3 or 30%") from None
    value = value / 100 if percent else value
    if not 0.0 <= value <= 1.0:
        raise UnitError(f"bad fraction {text!r}: must be between 0 and 1 (0% and 100%)")
    return value


def _trim(value: float) -> str:
    """Return `value` with three significant digits and no trailing zeros."""
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def format_size(size: float) -> str:
    """Return `size` bytes as people write it, in binary units (`4 GiB`, `37.5 MiB`, `512 B`)."""
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(size) >= factor:
            return f"{_trim(size / factor)} {unit}"
    return f"{_trim(size)} B"


def format_rate(rate: float) -> str:
    """Return `rate` bytes/s in decimal byte units (`125 MB/s`, `1.2 GB/s`)."""
    for unit, factor in (("TB/s", 10**12), ("GB/s", 10**9), ("MB/s", 10**6), ("kB/s", 10**3)):
        if abs(rate) >= factor:
            return f"{_trim(rate / factor)} {unit}"
    return f"{_trim(rate)} B/s"


def format_bitrate(rate: float) -> str:
    """Return `rate` bytes/s in decimal bit units (`1 Gbit/s`, `800 Mbit/s`)."""
    bits = rate * 8
    for unit, factor in (("Tbit/s", 10**12), ("Gbit/s", 10**9), ("Mbit/s", 10**6), ("kbit/s", 10**3)):
        if abs(bits) >= factor:
            return f"{_trim(bits / factor)} {unit}"
    return f"{_trim(bits)} bit/s"


def format_duration(seconds: float) -> str:
    """Return `seconds` as people write it (`300 ms`, `12.4 s`, `10 min 3 s`)."""
    if abs(seconds) < 1e-3:
        return f"{_trim(seconds * 1e6)} us"
    if abs(seconds) < 1.0:
        return f"{_trim(seconds * 1e3)} ms"
    if abs(seconds) < 120.0:
        return f"{_trim(seconds)} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"
