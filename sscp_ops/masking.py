"""One masking library for everything shown to people: logs, tickets, SMS, reports, events.

``mask_text`` finds and masks, in free text:

- mainland mobile numbers (1[3-9]X, 11 digits, optionally ``+86`` / ``0086`` / ``(+86)``,
  spaces or dashes between the groups): ``13812345678`` -> ``138****5678``;
- landline numbers written with their area code and a dash: ``010-62345678`` -> ``010-****5678``;
- 18-digit resident ID numbers whose check digit (GB 11643) and birth date are valid:
  ``11010519491231002X`` -> ``110105********002X``; random 18-digit runs are left alone;
- bank card numbers (13-19 digits, grouped or not) with a card-network first digit (3-6)
  that pass the Luhn check: ``6222****0123``-style;
- e-mail addresses: ``zhangsan@example.com`` -> ``z***@example.com``.

Digit runs embedded in longer digit runs are not matched (an order number is not a phone), and
digit runs that fail the check digit, the Luhn check or the date are left as they are.

``find_personal_data`` reports which kinds a text holds (for scans), ``mask_value`` hides the
middle of any value (the ``mask`` rule of ``sscp-ops mask db``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_PHONE = re.compile(
    r"(?<![0-9])(?:(?:\+|00)86[- ]?|\(\+?86\)[- ]?)?"
    r"(1[3-9][0-9])[- ]?([0-9]{4})[- ]?([0-9]{4})(?![0-9])"
)
# Area codes: 010, 02X (3 digits) or 0[3-9]XX (4 digits); subscriber numbers of 7-8 digits.
_LANDLINE = re.compile(r"(?<![0-9-])(0(?:10|2[0-9]|[3-9][0-9]{2}))-([0-9]{3,4})([0-9]{4})(?![0-9])")
_ID = re.compile(r"(?<![0-9A-Za-z])([1-9][0-9]{5})([0-9]{8})([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")
# Contiguous, or in groups of four split by one space or dash (the last group 1-4 digits).
_CARD = re.compile(
    r"(?<![0-9])(?:[3-6][0-9]{12,18}|[3-6][0-9]{3}(?:([ -])[0-9]{4})(?:\1[0-9]{4}){1,2}"
    r"(?:\1[0-9]{1,4})?)(?![0-9])"
)
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")


def id_check_digit(first17: str) -> str:
    """The GB 11643-1999 check character for the first 17 digits of an ID number."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11]


def _valid_birth_date(yyyymmdd: str) -> bool:
    if not ("01" <= yyyymmdd[4:6] <= "12" and "01" <= yyyymmdd[6:8] <= "31"):
        return False  # cheap rejection first: most 18-digit runs are not dates
    try:
        day = dt.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return False
    return 1850 <= day.year <= 2100


def valid_id_number(number: str) -> bool:
    """True for an 18-character resident ID number with a valid check character and date."""
    if len(number) != 18 or not number[:17].isdigit() or number[0] == "0":
        return False
    if not _valid_birth_date(number[6:14]):
        return False
    return id_check_digit(number[:17]) == number[17].upper()


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit() or len(digits) < 2:
        return False
    return luhn_check_digit(digits[:-1]) == digits[-1]


def valid_bank_card(digits: str) -> bool:
    """13-19 digits, first digit of a card network (3 Amex/JCB, 4 Visa, 5 MC, 6 UnionPay), Luhn."""
    return 13 <= len(digits) <= 19 and digits[0] in "3456" and luhn_valid(digits)


def valid_mobile(digits: str) -> bool:
    return len(digits) == 11 and digits[0] == "1" and digits[1] in "3456789" and digits.isdigit()


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
    if not valid_bank_card(digits):
        return whole
    return f"{digits[:4]}{'*' * (len(digits) - 8)}{digits[-4:]}"


def mask_text(text: str) -> str:
    """Mask every phone, ID, bank card number and e-mail address found in ``text``."""
    if not text:
        return text
    text = _ID.sub(_mask_id, text)
    text = _CARD.sub(_mask_card, text)
    text = _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    if "-" in text:
        text = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(3)}", text)
    if "@" in text:
        text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return text


def find_personal_data(text: str) -> set[str]:
    """The kinds of personal data in ``text``: ``id_number``, ``bank_card``, ``mobile``,
    ``landline``, ``email`` (an empty set when there is none; masked values do not count)."""
    kinds: set[str] = set()
    if not text:
        return kinds
    if any(valid_id_number(m.group(0)) for m in _ID.finditer(text)):
        kinds.add("id_number")
    if any(valid_bank_card(re.sub(r"\D", "", m.group(0))) for m in _CARD.finditer(text)):
        kinds.add("bank_card")
    if _PHONE.search(text):
        kinds.add("mobile")
    if _LANDLINE.search(text):
        kinds.add("landline")
    if _EMAIL.search(text):
        kinds.add("email")
    return kinds


def mask_value(value: str) -> str:
    """Keep the shape, hide the middle: personal data found in the value is masked as by
    :func:`mask_text`; any other value keeps its first and last quarter (at least one character
    each) and has the rest replaced by ``*``: ``北京市朝阳区建国路88号`` -> ``北京市******88号``."""
    if not value:
        return value
    masked = mask_text(value)
    if masked != value:
        return masked
    n = len(value)
    if n <= 2:
        return value[0] + "*" * (n - 1)
    keep = max(1, n // 4)
    return value[:keep] + "*" * (n - 2 * keep) + value[n - keep :]


#: Unicode categories of characters that change how the text around them is shown without
#: being seen themselves: controls (Cc: C0/C1, newlines and tabs included), format characters
#: (Cf: bidi embeddings, overrides and isolates U+202A-202E / U+2066-2069, marks, zero-width
#: characters) and the line / paragraph separators. An alert label holding ``\u202e`` would
#: otherwise show ``gnp.exe`` as ``exe.png``.
_INVISIBLE = frozenset(("Cc", "Cf", "Zl", "Zp"))


def _escape(char: str) -> str:
    if unicodedata.category(char) not in _INVISIBLE:
        return char
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def reveal_controls(text: str) -> str:
    """``text`` with every control, bidi and invisible format character written out as
    ``\\u202e`` (visible, and unable to reorder or hide what follows). For what people read:
    the UI, SMS and group robots."""
    if text.isprintable():  # the common case, one C loop
        return text
    return "".join(map(_escape, text))
