"""Resource quantities ("500m", "1Gi"): parsing and the canonical form the API server stores.

The server rewrites quantities into canonical form: `0.5` becomes "500m", "1000m"
becomes "1", "1536Mi" stays, "0.5Gi" becomes "512Mi", "2000" becomes "2k".
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation

_PATTERN = re.compile(r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_NANO = Decimal("1e-9")

ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"


class QuantityError(ValueError):
    pass


def parse(value) -> tuple[Decimal, str]:
    """The numeric value and format ("BinarySI", "DecimalSI" or "DecimalExponent") of a quantity."""
    if isinstance(value, bool):
        raise QuantityError(ERROR)
    if isinstance(value, (int, float)):
        return Decimal(str(value)), "DecimalSI"
    match = _PATTERN.match(str(value).strip())
    if not match:
        raise QuantityError(ERROR)
    try:
        number = Decimal(match.group(1))
    except InvalidOperation as exc:
        raise QuantityError(ERROR) from exc
    suffix = match.group(2) or ""
    if suffix in _BINARY:
        return number * (Decimal(1024) ** _BINARY[suffix]), "BinarySI"
    if suffix in _DECIMAL:
        return number.scaleb(_DECIMAL[suffix]), "DecimalSI"
    return number.scaleb(int(suffix[1:])), "DecimalExponent"


def canonical(value) -> str:
    """The canonical string the API server stores for a quantity."""
    number, fmt = parse(value)
    # Like resource.Quantity, never keep more precision than nano units: round up.
    number = number.quantize(_NANO, rounding=ROUND_CEILING) if number != number.to_integral_value() else number
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    number = abs(number)
    if fmt == "BinarySI" and number >= 1024 and number == number.to_integral_value():
        integer = int(number)
        power = 0
        while power < 6 and integer % 1024 == 0:
            integer //= 1024
            power += 1
        if power:
            return f"{sign}{integer}{['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'][power]}"
        fmt = "DecimalSI"
    exponent = -9
    scaled = number.scaleb(9)
    while exponent < 18 and scaled % 1000 == 0:
        scaled /= 1000
        exponent += 3
    mantissa = int(scaled)
    if fmt == "DecimalExponent":
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    return f"{sign}{mantissa}{_DECIMAL_SUFFIX[exponent]}"


def to_float(value) -> float:
    """A quantity as a plain number (cores, bytes)."""
    return float(parse(value)[0])
