from __future__ import annotations

import pytest

from sscp_ops.masking import (
    find_personal_data,
    id_check_digit,
    luhn_valid,
    mask_phone,
    mask_text,
    mask_value,
    valid_id_number,
)


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("电话 0086 13812345678", "电话 138****5678"),
        ("(+86)139 1234 5678", "139****5678"),
        ("座机 010-62345678 或 0755-1234567", "座机 010-****5678 或 0755-****4567"),
        ("日期 2026-11-28 12:00", "日期 2026-11-28 12:00"),
        ("卡 6222 0212 3456 7890 128", "卡 6222***********0128"),
        # an 18-digit run with a valid check digit but no valid birth date is not an ID number
        ("流水 990105194913310025", "流水 990105194913310025"),
        # Luhn-valid 16-digit order number not starting like a card network: left alone
        ("订单 2026112812345675", "订单 2026112812345675"),
        ("订单号 20261128123456789012", "订单号 20261128123456789012"),
        ("id=11010519491231002x&x=1", "id=110105********002x&x=1"),
    ],
)
def test_mask_text_real_world_formats(text: str, expected: str) -> None:
    assert mask_text(text) == expected


def test_find_personal_data_and_masked_text() -> None:
    text = "张三 13812345678 11010519491231002X 6222021234567890128 a.b@x.cn 010-62345678"
    assert find_personal_data(text) == {"mobile", "id_number", "bank_card", "email", "landline"}
    assert find_personal_data(mask_text(text)) == set()
    assert find_personal_data("订单 202611281234567890 金额 1380.00") == set()


def test_mask_value_keeps_shape() -> None:
    assert mask_value("北京市朝阳区建国路88号") == "北京市******88号"
    assert mask_value("张三") == "张*"
    assert mask_value("13812345678") == "138****5678"
    assert mask_value("") == ""
