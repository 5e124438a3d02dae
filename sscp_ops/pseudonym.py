"""Keyed, format-preserving pseudonyms for test data (the ``pseudonym`` and ``fake_name`` rules).

A pseudonym is a *permutation* of the values of one format, chosen by a secret key: the same
input always gives the same output (in every table and column, so joins still work), two
different inputs never give the same output (unique keys stay unique), and the output has the
input's format:

=============  =========================================================================
mobile         ``138 1234 5678`` -> ``138 ???? ????``: the 3-digit network prefix is kept,
               the 8 subscriber digits are encrypted (separators stay where they were)
ID number      region code (6 digits) kept; birth date and sequence number encrypted
               together, the sequence number's parity (sex) kept, a valid date and a
               correct GB 11643 check character: a valid-looking ID number. Birth dates in
               1900-2029 map into 1900-2029; the rare ones outside (1850-1899, 2030-2100)
               map among themselves, so the whole map stays one-to-one
bank card      issuer BIN (6 digits) kept, account digits encrypted, Luhn digit recomputed
e-mail         letters and digits of the local part encrypted (radix 62), domain kept
other          digits-only values (>= 6 digits) encrypted as digits, other ASCII values with
               >= 4 letters/digits encrypted as letters/digits; separators kept
=============  =========================================================================

Values that fit none of these (short codes, Chinese text) are masked by
:func:`sscp_ops.masking.mask_value` instead, which is not one-to-one: use ``fake_name`` /
``mask`` rules for such columns, not ``pseudonym`` on join keys.

Why FF3-1: it is the NIST SP 800-38G Rev. 1 format-preserving encryption mode (AES-based), a
reviewed construction, and the ``ff3`` package implements it; a hand-made Feistel would need
its own review. FF3-1 needs a domain of at least 10^6 values (6 digits, 4 characters of radix
62), which all formats above meet. The ID number's birth dates x sequence numbers (23.7 million
values) are not a power of ten: they are encrypted in the radix whose domain fits best (17^6 =
24.1 million) and cycle-walked (encrypt again until the value falls inside the domain, which
keeps the map a permutation): 1.02 encryptions on average. The AES key and the 56-bit tweaks
are derived from the key file with HMAC-SHA256, one tweak per format (and per kept prefix).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import math
import re
from bisect import bisect_right
from itertools import accumulate

from ff3 import FF3Cipher

from sscp_ops.masking import (
    id_check_digit,
    luhn_check_digit,
    mask_value,
    valid_bank_card,
    valid_id_number,
    valid_mobile,
)

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ALNUM_RE = re.compile(r"[0-9A-Za-z]")
_EMAIL_RE = re.compile(r"^([^@\s]+)@([^@\s]+)$")
_SEPARATORS = re.compile(r"^[0-9 ()+-]+$")

# ID birth dates: the core span maps onto itself, the rest of 1850-2100 onto itself.
_CORE = (dt.date(1900, 1, 1), dt.date(2029, 12, 31))
_REST = ((dt.date(1850, 1, 1), dt.date(1899, 12, 31)), (dt.date(2030, 1, 1), dt.date(2100, 12, 31)))
_CACHE_SIZE = 1 << 16


@functools.lru_cache(maxsize=64)
def _domain(n: int) -> tuple[int, int]:
    """(radix, width) with radix**width >= n, width at least FF3-1's minimum for the radix,
    and radix**width as close to ``n`` as possible (fewest cycle-walking steps)."""
    best: tuple[float, int, int] | None = None
    for radix in range(2, 63):
        width = max(math.ceil(math.log(FF3Cipher.DOMAIN_MIN) / math.log(radix)), 1)
        while radix**width < n:
            width += 1
        ratio = radix**width / n
        if best is None or ratio < best[0]:
            best = (ratio, radix, width)
    assert best is not None
    return best[1], best[2]


def _to_base(x: int, radix: int, width: int) -> str:
    digits = []
    for _ in range(width):
        x, d = divmod(x, radix)
        digits.append(FF3Cipher.BASE62[d])
    return "".join(reversed(digits))


def _from_base(text: str, radix: int) -> int:
    x = 0
    for ch in text:
        x = x * radix + FF3Cipher.BASE62.index(ch)
    return x


class Pseudonymizer:
    """Pseudonyms under one key. ``key`` is the key file's content (at least 16 bytes)."""

    def __init__(self, key: bytes) -> None:
        if len(key.strip()) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self._key = hmac.new(key.strip(), b"sscp-ops pseudonym v1", hashlib.sha256).digest()
        aes = hmac.new(self._key, b"aes-256 key", hashlib.sha256).hexdigest()
        self._aes = aes
        self._digits = FF3Cipher(aes, "00" * 7, radix=10)
        self._radix: dict[int, FF3Cipher] = {}
        self._alnum = FF3Cipher.withCustomAlphabet(aes, "00" * 7, _ALNUM)
        self.pseudonym = functools.lru_cache(maxsize=_CACHE_SIZE)(self._pseudonym)
        self.fake_name = functools.lru_cache(maxsize=_CACHE_SIZE)(self._fake_name)
        from faker.providers.person.zh_CN import Provider

        surnames = list(Provider.last_names.items())
        self._surnames = [name for name, _ in surnames]
        self._surname_cum = list(accumulate(int(w * 100) for _, w in surnames))
        self._given = list(Provider.first_names)

    # --- building blocks ------------------------------------------------------------------

    def _tweak(self, label: str) -> str:
        return hmac.new(self._key, label.encode(), hashlib.sha256).digest()[:7].hex()

    def _enc_digits(self, digits: str, label: str) -> str:
        return self._digits.encrypt_with_tweak(digits, self._tweak(label))

    def _permute(self, x: int, n: int, label: str) -> int:
        """A keyed permutation of ``range(n)``: FF3-1 over the radix and width whose domain
        is the smallest one holding ``n`` values (see :func:`_domain`), cycle walking until
        the result falls inside ``range(n)``."""
        radix, width = _domain(n)
        cipher = self._radix.get(radix)
        if cipher is None:
            cipher = self._radix[radix] = FF3Cipher(self._aes, "00" * 7, radix=radix)
        tweak = self._tweak(label)
        while True:
            x = _from_base(cipher.encrypt_with_tweak(_to_base(x, radix, width), tweak), radix)
            if x < n:
                return x

    # --- formats ------------------------------------------------------------------------

    def mobile(self, digits: str) -> str:
        return digits[:3] + self._enc_digits(digits[3:], "mobile:" + digits[:3])

    def id_number(self, number: str) -> str:
        region, birth, seq = number[:6], number[6:14], int(number[14:17])
        day = dt.date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))
        spans = [_CORE] if _CORE[0] <= day <= _CORE[1] else list(_REST)
        sizes = [(b - a).days + 1 for a, b in spans]
        offset = 0
        for (a, b), size in zip(spans, sizes, strict=True):
            if a <= day <= b:
                index = offset + (day - a).days
                break
            offset += size
        total = sum(sizes)
        y = self._permute(index * 500 + seq // 2, total * 500, f"id:{len(spans)}:{region}")
        index, half = divmod(y, 500)
        for (a, _), size in zip(spans, sizes, strict=True):
            if index < size:
                new_day = a + dt.timedelta(days=index)
                break
            index -= size
        body = f"{region}{new_day:%Y%m%d}{half * 2 + seq % 2:03d}"
        check = id_check_digit(body)
        return body + (check.lower() if number[17] == "x" else check)

    def bank_card(self, digits: str) -> str:
        body = digits[:6] + self._enc_digits(digits[6:-1], "card:" + digits[:6])
        return body + luhn_check_digit(body)

    def _alnum_chars(self, text: str, label: str) -> str | None:
        chars = _ALNUM_RE.findall(text)
        if not 4 <= len(chars) <= self._alnum.maxLen:
            return None
        enc = iter(self._alnum.encrypt_with_tweak("".join(chars), self._tweak(label)))
        return _ALNUM_RE.sub(lambda _: next(enc), text)

    def email(self, local: str, domain: str) -> str:
        new = self._alnum_chars(local, "email")
        if new is None:  # 1-3 or > 32 letters/digits: a 48-bit keyed hash
            new = "u" + hmac.new(self._key, local.encode(), hashlib.sha256).hexdigest()[:12]
        return f"{new}@{domain}"

    # --- dispatch -----------------------------------------------------------------------

    def _pseudonym(self, value: str) -> str:
        """The pseudonym of one value (see the module docstring for the formats)."""
        s = value.strip()
        if not s:
            return value
        if valid_id_number(s):
            return value.replace(s, self.id_number(s))
        m = _EMAIL_RE.match(s)
        if m:
            return value.replace(s, self.email(m.group(1), m.group(2)))
        if _SEPARATORS.match(s):
            digits = re.sub(r"\D", "", s)
            country = ""
            if len(digits) == 13 and digits.startswith("86") and valid_mobile(digits[2:]):
                country, digits = "86", digits[2:]
            if valid_mobile(digits):
                new = country + self.mobile(digits)
            elif valid_bank_card(digits):
                new = self.bank_card(digits)
            elif 6 <= len(digits) <= self._digits.maxLen:
                new = self._enc_digits(digits, "digits")
            else:
                new = None
            if new is not None:
                it = iter(new)
                return re.sub(r"\d", lambda _: next(it), value)
        new = self._alnum_chars(value, "text") if value.isascii() else None
        return new if new is not None else mask_value(value)

    def _fake_name(self, value: str) -> str:
        """A Chinese name chosen by the key from the value: the same name gives the same fake,
        never the value itself."""
        for attempt in range(8):
            msg = f"name:{attempt}:{value}".encode()
            h = int.from_bytes(hmac.new(self._key, msg, "sha256").digest()[:8])
            surname = self._surnames[bisect_right(self._surname_cum, h % self._surname_cum[-1])]
            name = surname + self._given[(h >> 24) % len(self._given)]
            if name != value:
                break
        return name
