"""One masking library for everything shown to people: logs, tickets, SMS, reports, events.

``mask_text`` finds and masks, in free text:

- mainland mobile numbers (1[3-9]X, 11 digits): ``13812345678`` -> ``138****5678``;
- 18-digit resident ID numbers whose check digit (GB 11643) is valid:
  ``11010519491231002X`` -> ``110105********002X``; random 18-digit runs are left alone;
- bank card numbers (13-19 digits) that pass the Luhn check: ``6222****0123``-style;
- e-mail addresses: ``zhangsan@example.com`` -> ``z***@example.com``.

Digit runs embedded in longer digit runs are not matched (an order number is not a phone).
"""

from __future__ import annotations

import re

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_PHONE = re.compile(
    r"(?<![0-9])(?:\+?86[- ]?)?(1[3-9][0-9])[- ]?([0-9]{4})[- ]?([0-9]{4})(?![0-9])"
)
_ID = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{5})([0-9]{8})([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
_CARD = re.compile(r"(?<![0-9])([0-9]{4})((?:[ -]?[0-9]){5,11})[ -]?([0-9]{4})(?![0-9])")
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def id_check_digit(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits of an ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def valid_id_number(number: str) -> bool:
    """True for an 18-character resident ID number with a valid check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    return id_check_digit(number[:17]) == number[17].upper()


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask_phone(number: str) -> str:
    """``13812345678`` -> ``138****5678`` (other strings: all but the last 4 characters hidden)."""
    digits = re.sub(r"\D", "", number)
    if len(digits) >= 11:
        digits = digits[-11:]
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(0, len(number) - 4) + number[-4:]


def _mask_id(m: re.Match) -> str:
    whole = m.group(0)
    if not valid_id_number(whole):
        return whole
    return f"{m.group(1)}********{m.group(3)}"


def _mask_card(m: re.Match) -> str:
    whole = m.group(0)
    digits = re.sub(r"\D", "", whole)
    if not 13 <= len(digits) <= 19 or not luhn_valid(digits):
        return whole
    return f"{digits[:4]}{'*' * (len(digits) - 8)}{digits[-4:]}"


def mask_text(text: str) -> str:
    """Mask every phone, ID, bank card number and e-mail address found in ``text``."""
    if not text:
        return text
    text = _ID.sub(_mask_id, text)
    text = _CARD.sub(_mask_card, text)
    text = _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
