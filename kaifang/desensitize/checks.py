"""Check digits: GB 11643 (resident ID), Luhn (bank cards), GB 32100 (统一社会信用代码).

Each check exists twice: for one string (free-text spans, tests) and for a pyarrow array of
strings already known to have the right shape (a column sample, checked in a few dozen vector
operations instead of a Python loop). The two are tested against each other.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from kaifang.desensitize.patterns import CREDIT_ALPHABET

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"  # check character by (weighted sum mod 11)
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # digit d doubled, digits of the product summed
LUHN_WIDTH = 19


def id18_valid(value: str) -> bool:
    """True when the 18th character is the GB 11643 check character of the first 17 digits."""
    if len(value) != 18 or not value[:17].isascii() or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == value[17].upper()


def luhn_valid(value: str) -> bool:
    """True when a digit string passes the Luhn check (bank cards)."""
    if not value.isascii() or not value.isdigit():
        return False
    digits = [int(d) for d in reversed(value)]
    return (sum(digits[0::2]) + sum(LUHN_DOUBLE[d] for d in digits[1::2])) % 10 == 0


def credit_code_valid(value: str) -> bool:
    """True when the 18th character is the GB 32100 check character of the first 17."""
    if len(value) != 18 or any(c not in CREDIT_ALPHABET for c in value):
        return False
    total = sum(CREDIT_ALPHABET.index(c) * w for c, w in zip(value[:17], CREDIT_WEIGHTS, strict=True))
    return CREDIT_ALPHABET[(31 - total % 31) % 31] == value[17]


# --- whole arrays (shape already matched) ----------------------------------------------------


def _char(values: pa.Array, i: int) -> pa.Array:
    return pc.utf8_slice_codeunits(values, i, i + 1)


def _mod(values: pa.Array, m: int) -> pa.Array:
    return pc.subtract(values, pc.multiply(pc.divide(values, m), m))  # integer division truncates


def _weighted(positions: list[pa.Array], weights: tuple[int, ...]) -> pa.Array:
    total = pc.multiply(positions[0], weights[0])
    for position, weight in zip(positions[1:], weights[1:], strict=True):
        total = pc.add(total, pc.multiply(position, weight))
    return total


def id18_mask(values: pa.Array) -> pa.Array:
    """Per value, whether the GB 11643 check passes; values must match the 18-digit ID shape."""
    if len(values) == 0:
        return pa.array([], pa.bool_())
    digits = [pc.cast(_char(values, i), pa.int64()) for i in range(17)]
    expected = pc.take(pa.array(list(ID_CHECK)), _mod(_weighted(digits, ID_WEIGHTS), 11))
    return pc.equal(expected, pc.utf8_upper(_char(values, 17)))


def luhn_mask(values: pa.Array) -> pa.Array:
    """Per value, whether the Luhn check passes; values must be 16–19 ASCII digits."""
    if len(values) == 0:
        return pa.array([], pa.bool_())
    padded = pc.utf8_lpad(values, LUHN_WIDTH, "0")
    doubled = pa.array(LUHN_DOUBLE, pa.int64())
    total: pa.Array | None = None
    for i in range(LUHN_WIDTH):
        digit = pc.cast(_char(padded, i), pa.int64())
        term = pc.take(doubled, digit) if (LUHN_WIDTH - 1 - i) % 2 else digit
        total = term if total is None else pc.add(total, term)
    return pc.equal(_mod(total, 10), 0)


def credit_code_mask(values: pa.Array) -> pa.Array:
    """Per value, whether the GB 32100 check passes; values must match the credit-code shape."""
    if len(values) == 0:
        return pa.array([], pa.bool_())
    alphabet = pa.array(list(CREDIT_ALPHABET))
    codes = [pc.cast(pc.index_in(_char(values, i), value_set=alphabet), pa.int64()) for i in range(17)]
    check = _mod(pc.subtract(31, _mod(_weighted(codes, CREDIT_WEIGHTS), 31)), 31)
    return pc.equal(pc.take(alphabet, check), _char(values, 17))
