"""Rust's ``{}`` formatting of f32 and f64, digit for digit.

Rust prints a float as the shortest digits that round-trip *for the value's own width*,
resolving ties between two shortest candidates upwards, written positionally (never in
exponent form). Python only knows doubles, so the f32 case (and the ties) are done here
with exact arithmetic where a double would be wrong.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

__all__ = ["format_f32", "format_f64"]

_pack_f, _unpack_f = struct.Struct("<f").pack, struct.Struct("<f").unpack
_pack_I, _unpack_I = struct.Struct("<I").pack, struct.Struct("<I").unpack


# ================================================================= float display
#
# Rust prints a float as the shortest digit string inside the rounding interval of the
# value (core::num::flt2dec, "Grisu with Dragon fallback"), picks the closest such string
# and, when two are equally close, the upper one. Its interval has two quirks we must
# copy: every power of two (the smallest normal included) gets a lower half-gap half the
# size of the upper one, and subnormal boundaries always count as inside.
#
# ``_dragon`` is that algorithm in exact integer arithmetic. It is the reference; the
# fast paths below it are used only where they provably give the same digits.


def _dragon(mant: int, minus: int, plus: int, exp: int, inclusive: bool) -> tuple[str, int]:
    """Shortest digits ``d`` and exponent ``k`` with value ``0.d × 10^k`` (Rust's Dragon).

    The value is ``mant·2^exp``; its rounding interval is ``(mant-minus)·2^exp`` to
    ``(mant+plus)·2^exp``, boundaries included when ``inclusive``.
    """
    if exp >= 0:
        m, mn, pl, scale = mant << exp, minus << exp, plus << exp, 1
    else:
        m, mn, pl, scale = mant, minus, plus, 1 << -exp
    high = m + pl
    # k: the smallest exponent with high < 10^k (inclusive) or high <= 10^k (exclusive).
    k = int((high.bit_length() - scale.bit_length()) * 0.30102999566398120) - 1

    def fits(k: int) -> bool:
        lhs, rhs = (high, scale * 10**k) if k >= 0 else (high * 10**-k, scale)
        return lhs < rhs if inclusive else lhs <= rhs

    while fits(k):
        k -= 1
    while not fits(k):
        k += 1
    if k >= 0:
        scale *= 10**k
    else:
        f = 10**-k
        m, mn, pl = m * f, mn * f, pl * f

    digits: list[int] = []
    while True:
        m, mn, pl = m * 10, mn * 10, pl * 10
        d, m = divmod(m, scale)
        digits.append(d)
        if inclusive:
            down, up = m <= mn, scale <= m + pl
        else:
            down, up = m < mn, scale < m + pl
        if down or up:
            break
    if up and (not down or 2 * m >= scale):
        i = len(digits) - 1
        while i >= 0 and digits[i] == 9:
            digits[i] = 0
            i -= 1
        if i >= 0:
            digits[i] += 1
        else:  # all nines: Rust's round_up appends a zero and bumps the exponent
            digits[0] = 1
            digits.append(0)
            k += 1
    return "".join(map(str, digits)), k


def _split_decimal(text: str) -> tuple[str, int]:
    """``repr`` of a positive float → (significant digits, k) with value 0.d × 10^k."""
    mant, _, exp_text = text.partition("e")
    whole, _, frac = mant.partition(".")
    raw = (whole + frac).lstrip("0")
    digits = raw.rstrip("0")
    k = (int(exp_text) if exp_text else 0) - len(frac) + (len(raw) - len(digits)) + len(digits)
    return digits, k


def _tie_fix(digits: str, k: int, mant: int, exp: int) -> tuple[str, int]:
    """Turn Python's round-half-even choice into Rust's round-half-up one.

    Two shortest candidates are equally close to ``mant·2^exp`` only when the value's
    exact decimal expansion is the shortest digits plus one trailing 5, which happens
    exactly when (with ``mant`` made odd) the last digit sits at ``10^(exp+1)``.
    """
    shift = (mant & -mant).bit_length() - 1
    mant >>= shift
    exp += shift
    last = k - len(digits)
    if exp >= 0 or last != exp + 1:
        return digits, k
    up = str(((mant * 5 ** -(exp + 1)) >> 1) + 1)
    stripped = up.rstrip("0")
    return stripped, last + len(up)


def _f64_digits(bits: int) -> tuple[str, int]:
    biased = (bits >> 52) & 0x7FF
    frac = bits & 0xF_FFFF_FFFF_FFFF
    if biased == 0:  # subnormal: Rust always includes the boundaries
        return _dragon(frac << 1, 1, 1, -1075, True)
    mant = frac | 1 << 52
    exp = biased - 1075
    if frac == 0:  # power of two: asymmetric interval
        return _dragon(mant << 2, 1, 2, exp - 2, True)
    # repr is the shortest-closest string over the same interval (boundaries included
    # for even mantissas, as in Rust); only its tie-break differs.
    x = abs(struct.unpack("<d", struct.pack("<Q", bits))[0])
    digits, k = _split_decimal(repr(x))
    return _tie_fix(digits, k, mant, exp)


def _f32_digits(bits: int) -> tuple[str, int]:
    biased = (bits >> 23) & 0xFF
    frac = bits & 0x7F_FFFF
    if biased == 0:
        return _dragon(frac << 1, 1, 1, -150, True)
    mant = frac | 1 << 23
    exp = biased - 150
    if frac == 0:
        return _dragon(mant << 2, 1, 2, exp - 2, True)
    # Binary-search the fewest significant digits whose correctly rounded decimal lies
    # in the (symmetric) rounding interval. Nine digits always do; the shorter roundings
    # come from those nine by integer arithmetic, and the interval ends are exact doubles.
    x = abs(_unpack_f(_pack_I(bits))[0])
    nine = f"{x:.8e}"  # correctly rounded: d.dddddddde±xx
    n9 = int(nine[0] + nine[2:10])
    j9 = int(nine[11:]) - 8
    half = 2.0 ** (exp - 1)
    lo_b, hi_b = x - half, x + half
    n, j = n9, j9
    lo, hi = 1, 9
    while lo < hi:
        p = (lo + hi) >> 1
        unit = _POW10[9 - p]
        q, r = divmod(n9, unit)
        if 2 * r > unit or (2 * r == unit and _exceeds_nine(x, n9, j9, q)):
            q += 1
        cj = j9 + 9 - p
        # The double nearest q·10^cj: one correctly rounded operation on exact operands.
        if 0 <= cj <= 22:
            f = q * _F10[cj]
        elif -22 <= cj < 0:
            f = q / _F10[-cj]
        else:
            f = float(f"{q}e{cj}")
        if lo_b < f < hi_b or (
            f in (lo_b, hi_b) and _on_boundary_inside(q, cj, f, lo_b, not frac & 1)
        ):
            hi = p
            n, j = q, cj
        else:
            lo = p + 1
    text = str(n)
    return _tie_fix(text.rstrip("0"), j + len(text), mant, exp)


_POW10 = tuple(10**i for i in range(10))
_F10 = tuple(float(10**i) for i in range(23))


def _exceeds_nine(x: float, n9: int, j9: int, q: int) -> bool:
    """Round up a nine-digit rounding that ends in exactly 5? Only ``x`` can tell."""
    exact, nine = Decimal(x), Decimal(n9).scaleb(j9)  # both exact; comparisons are too
    return exact > nine or (exact == nine and bool(q & 1))


def _on_boundary_inside(n: int, j: int, f: float, lo_b: float, even: bool) -> bool:
    """``n·10^j`` rounded onto an interval end ``f``: is the exact value inside?"""
    exact, bound = Decimal(n).scaleb(j), Decimal(f)
    if exact == bound:
        return even
    return exact > bound if f == lo_b else exact < bound


def _positional(digits: str, k: int) -> str:
    """Rust's ``digits_to_dec_str`` with no minimum precision: never an exponent."""
    n = len(digits)
    if k <= 0:
        return "0." + "0" * -k + digits
    if k < n:
        return digits[:k] + "." + digits[k:]
    return digits + "0" * (k - n)


def _float_text(
    bits: int,
    sign_bit: int,
    exp_mask: int,
    frac_mask: int,
    digits_of: Callable[[int], tuple[str, int]],
    suffix: str,
) -> str:
    negative = bits & sign_bit
    if bits & exp_mask == exp_mask:
        if bits & frac_mask:
            return "NaN" + suffix  # Rust prints every NaN, any sign or payload, as NaN
        return ("-inf" if negative else "inf") + suffix
    if not bits & (exp_mask | frac_mask):
        return ("-0.0" if negative else "0.0") + suffix
    text = _positional(*digits_of(bits))
    if "." not in text:
        text += ".0"
    return ("-" + text if negative else text) + suffix


def _fmt_f32(v: Any) -> str:
    return _float_text(v.bits, 0x8000_0000, 0x7F80_0000, 0x7F_FFFF, _f32_digits, "f32")


def _fmt_f64(v: Any) -> str:
    return _float_text(v.bits, 1 << 63, 0x7FF << 52, (1 << 52) - 1, _f64_digits, "f64")


format_f32 = _fmt_f32
format_f64 = _fmt_f64
