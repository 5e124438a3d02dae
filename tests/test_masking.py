from __future__ import annotations

import pytest

from sscp_ops.masking import id_check_digit, luhn_valid, mask_phone, mask_text, valid_id_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("请联系 13812345678 处理", "请联系 138****5678 处理"),
        ("tel:+86 139-1234-5678", "tel:139****5678"),
        ("身份证 11010519491231002X 已登记", "身份证 110105********002X 已登记"),
        ("订单号 110105194912310021 不是身份证", "订单号 110105194912310021 不是身份证"),
        ("卡号 6222021234567890128 已冻结", "卡号 6222***********0128 已冻结"),
        ("卡号 6222021234567890121 校验不过", "卡号 6222021234567890121 校验不过"),
        ("mail zhangsan@example.gov.cn now", "mail z***@example.gov.cn now"),
        ("order 202611281234567890", "order 202611281234567890"),
        ("", ""),
    ],
)
def test_mask_text(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_id_check_digit_and_luhn() -> None:
    assert id_check_digit("11010519491231002") == "X"
    assert valid_id_number("11010519491231002x")
    assert not valid_id_number("110105194912310021")
    assert luhn_valid("6222021234567890128")
    assert not luhn_valid("6222021234567890121")


def test_mask_phone() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138 1234 5678") == "138****5678"
