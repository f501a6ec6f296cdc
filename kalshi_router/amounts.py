"""Prices and counts in intents: one rule, whether an intent is built in Python or decoded from
the service's JSON or msgpack.

- A price given as a ``str`` (or a ``Decimal``) is dollars: ``"0.45"``. Given as an ``int`` it
  is cents: ``45`` is $0.45.
- A count given as an ``int`` is whole contracts; as a ``str`` (or a ``Decimal``) it may be
  fractional, to Kalshi's step of 0.01 contract: ``"2.5"``.
- A ``float`` is refused, naming the field: a binary float cannot hold 0.45 exactly, and what
  reached the exchange would be whatever it rounded to. A ``bool`` is not a number.

Values are normalised to Kalshi's fixed-point forms, 4 places for a dollar price and 2 for a
count, so every encoder can write them as they stand.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TypeAlias

from kalshi_router.errors import IntentError

PriceLike: TypeAlias = Decimal | str | int
CountLike: TypeAlias = Decimal | str | int

if TYPE_CHECKING:
    Exact: TypeAlias = Decimal
else:
    # The annotation of every price and count field of the intents. msgspec decodes a field by
    # its annotation: as Decimal it would read JSON 45 as $45 and take 0.45 and msgpack floats
    # as they come; as Any it hands __post_init__ the value as the wire carried it (int, str,
    # float, bool, null), so the rule above holds for the wire exactly as for Python. Once an
    # intent is built, the field holds a Decimal, which is what type checkers are told.
    Exact = Any

PRICE_PLACES = Decimal("0.0001")
COUNT_PLACES = Decimal("0.01")
_ZERO_COUNT = Decimal("0.00")
_ONE = Decimal(1)
_PRICE_FORMS = 'a str in dollars ("0.45") or an int in cents (45)'
_COUNT_FORMS = 'an int of whole contracts (2) or a str ("2.5")'


def parse_price(value: object, field: str = "price") -> Decimal:
    """A YES price strictly between $0 and $1, to 4 places: a str or Decimal is dollars, an
    int is cents."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 < value < 100:
            raise IntentError(
                field, f"must be between 0 and 1 dollar exclusive; an int is cents, got {value}"
            )
        return Decimal(value).scaleb(-2).quantize(PRICE_PLACES)
    price = _decimal(field, value, _PRICE_FORMS)
    if not 0 < price < _ONE:
        raise IntentError(field, f"must be between 0 and 1 dollar exclusive, got {price}")
    return _exact(field, price, PRICE_PLACES, "4")


def parse_count(value: object, field: str = "count", *, allow_zero: bool = False) -> Decimal:
    """A contract count > 0 (or >= 0) to 2 places: an int is whole contracts, a str or Decimal
    may be fractional."""
    if isinstance(value, int) and not isinstance(value, bool):
        count = Decimal(value)
    else:
        count = _decimal(field, value, _COUNT_FORMS)
    if count < 0 or (count == 0 and not allow_zero):
        raise IntentError(field, f"must be {'>= 0' if allow_zero else '> 0'}, got {count}")
    if count == 0:
        return _ZERO_COUNT  # "-0" too: the wire gets "0.00", never "-0.00"
    return _exact(field, count, COUNT_PLACES, "2")


def dollars(price: object) -> str:
    """$0.56, $0.5612: the cents always, further places only when they are not zero."""
    if not isinstance(price, Decimal):
        return repr(price)
    cents = price.quantize(COUNT_PLACES)
    return f"${cents if cents == price else price.normalize():f}"


def contracts(count: object) -> str:
    """1 contract, 10 contracts, 0.56 contracts."""
    if not isinstance(count, Decimal):
        return repr(count)
    return f"{count.normalize():f} contract{'' if count == 1 else 's'}"


def _decimal(field: str, value: object, forms: str) -> Decimal:
    """A str or a Decimal as a finite Decimal; anything else is refused, saying what to send."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise IntentError(field, f"not a decimal number: {value!r}; send {forms}") from None
    elif isinstance(value, float):
        raise IntentError(
            field, f"must not be a float: binary floats cannot say 0.45 exactly; send {forms}"
        )
    elif isinstance(value, bool):
        raise IntentError(field, f"must be a number, not a bool; send {forms}")
    else:
        kind = "null" if value is None else type(value).__name__
        raise IntentError(field, f"must be {forms}, not {kind}")
    if not result.is_finite():
        raise IntentError(field, "must be a finite number")
    return result


def _exact(field: str, value: Decimal, places: Decimal, what: str) -> Decimal:
    try:
        quantized = value.quantize(places)
    except InvalidOperation:
        # More digits than the decimal context holds (e.g. a count of "1e30"): quantize raises
        # ArithmeticError, which must not escape as anything but this field's IntentError.
        raise IntentError(field, f"too many digits: {value}") from None
    if quantized != value:
        raise IntentError(field, f"at most {what} decimal places, got {value}")
    return quantized
