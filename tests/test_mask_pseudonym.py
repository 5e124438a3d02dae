"""Pseudonyms: keyed, one-to-one, format-preserving."""

from __future__ import annotations

import pytest

from sscp_ops.masking import valid_bank_card, valid_id_number, valid_mobile
from sscp_ops.pseudonym import Pseudonymizer

KEY = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def p() -> Pseudonymizer:
    return Pseudonymizer(KEY)


def test_mobile_is_a_permutation(p: Pseudonymizer) -> None:
    inputs = [f"1381234{i:04d}" for i in range(3000)]
    outputs = [p.pseudonym(x) for x in inputs]
    assert len(set(outputs)) == len(inputs)
    assert all(valid_mobile(o) and o.startswith("138") for o in outputs)
    assert not set(outputs) & set(inputs[:10])
    assert p._digits.decrypt_with_tweak(outputs[0][3:], p._tweak("mobile:138")) == "12340000"


def test_id_numbers_valid_distinct_same_region_and_sex(p: Pseudonymizer) -> None:
    from sscp_ops.masking import id_check_digit

    bodies = [f"11010519900101{s:03d}" for s in range(1000)]
    inputs = [b + id_check_digit(b) for b in bodies]
    outputs = [p.pseudonym(x) for x in inputs]
    assert len(set(outputs)) == 1000
    for i, o in zip(inputs, outputs, strict=True):
        assert valid_id_number(o)
        assert o[:6] == "110105" and int(o[16]) % 2 == int(i[16]) % 2
        assert "19000101" <= o[6:14] <= "20291231"
    # birth dates outside 1900-2029 stay outside, inside the valid range
    old = "11010518880202001"
    out = p.pseudonym(old + id_check_digit(old))
    assert valid_id_number(out) and not "19000101" <= out[6:14] <= "20291231"


def test_bank_card_and_email_and_other(p: Pseudonymizer) -> None:
    card = p.pseudonym("6222021234567890128")
    assert valid_bank_card(card) and card.startswith("622202") and len(card) == 19
    assert p.pseudonym("6222 0212 3456 7890 128").replace(" ", "") == card
    mail = p.pseudonym("Zhang.San@example.gov.cn")
    assert mail.endswith("@example.gov.cn") and mail != "Zhang.San@example.gov.cn"
    assert mail[5] == "." and len(mail) == len("Zhang.San@example.gov.cn")
    assert p.pseudonym("ab@x.cn").startswith("u")
    assert p.pseudonym("+86 138-1234-5678").startswith("+86 138-")
    assert p.pseudonym("ORD-2026-000123")[3] == "-"
    assert p.pseudonym("北京市海淀区") == "北****区"  # not one-to-one: masked instead
    assert p.pseudonym("") == ""


def test_same_value_same_pseudonym_other_key_other_pseudonym(p: Pseudonymizer) -> None:
    other = Pseudonymizer(b"another key, also long enough")
    again = Pseudonymizer(KEY)
    for value in ("13812345678", "11010519491231002X", "zhangsan@example.com"):
        assert again.pseudonym(value) == p.pseudonym(value)
        assert other.pseudonym(value) != p.pseudonym(value)
    assert again.fake_name("张三") == p.fake_name("张三") != "张三"


def test_short_key_rejected() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        Pseudonymizer(b"short\n")
