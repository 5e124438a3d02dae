"""``sscp-ops mask db`` on the real MariaDB: a copy of generated Chinese personal data."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from fx_mask import MaskDbs, root_connect
from helpers import sscp_ops_cmd

from sscp_ops.masking import find_personal_data, valid_bank_card, valid_id_number, valid_mobile

RULES = """\
  customers:
    name: fake_name
    phone: pseudonym
    id_number: pseudonym
    email: pseudonym
    address: mask
    bank_card: pseudonym
    note: mask
    phone_num: pseudonym
  orders:
    customer_phone: pseudonym
    customer_id_number: pseudonym
    channel: {fixed: "test"}
"""


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        sscp_ops_cmd("mask", "db", *args), capture_output=True, text=True, timeout=timeout
    )


def rows(db: str, sql: str) -> list[tuple]:
    conn = root_connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def copied(mask_dbs: MaskDbs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    rules = tmp_path_factory.mktemp("rules") / "rules.yml"
    rules.write_text(mask_dbs.rules_yaml(RULES))
    conn = root_connect()
    with conn.cursor() as cur:  # the copy creates the target database when it is missing
        cur.execute(f"DROP DATABASE {mask_dbs.dst}")
    conn.close()
    proc = run("--rules", str(rules))
    assert proc.returncode == 0, proc.stderr
    assert "copied 2 tables, 1200 rows" in proc.stdout
    assert "views not copied: big_orders" in proc.stdout
    return rules


def test_schema_copied(mask_dbs: MaskDbs, copied: Path) -> None:
    for table in ("customers", "orders"):
        src = rows(mask_dbs.src, f"SHOW CREATE TABLE {table}")[0][1]
        dst = rows(mask_dbs.dst, f"SHOW CREATE TABLE {table}")[0][1]
        strip = re.compile(r" AUTO_INCREMENT=\d+")
        assert strip.sub("", src) == strip.sub("", dst)
    assert rows(mask_dbs.dst, "SHOW FULL TABLES WHERE Table_type = 'VIEW'") == []


def test_pseudonyms_keep_format_and_uniqueness(mask_dbs: MaskDbs, copied: Path) -> None:
    src = {
        r[0]: r
        for r in rows(
            mask_dbs.src,
            "SELECT id, phone, id_number, bank_card, email, phone_num, name FROM customers",
        )
    }
    dst = {
        r[0]: r
        for r in rows(
            mask_dbs.dst,
            "SELECT id, phone, id_number, bank_card, email, phone_num, name FROM customers",
        )
    }
    assert src.keys() == dst.keys() and len(dst) == 300
    for key, (_, phone, idn, card, email, num, name) in dst.items():
        _, s_phone, s_idn, s_card, s_email, s_num, s_name = src[key]
        assert valid_mobile(phone) and phone != s_phone and phone[:3] == s_phone[:3]
        assert valid_id_number(idn) and idn != s_idn
        assert idn[:6] == s_idn[:6] and int(idn[16]) % 2 == int(s_idn[16]) % 2
        assert valid_bank_card(card) and card != s_card and card[:6] == s_card[:6]
        assert email != s_email and email.split("@")[1] == s_email.split("@")[1]
        assert num == int(phone)  # the same phone in a BIGINT column gets the same pseudonym
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,4}", name) and name != s_name
    assert len({r[1] for r in dst.values()}) == 300
    assert len({r[2] for r in dst.values()}) == 300


def test_joins_still_work(mask_dbs: MaskDbs, copied: Path) -> None:
    sql = (
        "SELECT o.id, c.id FROM orders o JOIN customers c"
        " ON c.phone = o.customer_phone AND c.id_number = o.customer_id_number ORDER BY o.id"
    )
    joined_src = rows(mask_dbs.src, sql)
    assert len(joined_src) == 900
    assert rows(mask_dbs.dst, sql) == joined_src


def test_other_rules_and_untouched_columns(mask_dbs: MaskDbs, copied: Path) -> None:
    src = rows(
        mask_dbs.src,
        "SELECT c.id, address, note, order_no FROM customers c JOIN orders o"
        " ON o.id = c.id ORDER BY c.id",
    )
    dst = rows(
        mask_dbs.dst,
        "SELECT c.id, address, note, order_no FROM customers c JOIN orders o"
        " ON o.id = c.id ORDER BY c.id",
    )
    for (_, s_addr, s_note, s_no), (_, addr, note, no) in zip(src, dst, strict=True):
        assert len(addr) == len(s_addr) and "*" in addr and addr != s_addr
        assert find_personal_data(s_note) and find_personal_data(note) == set() and "****" in note
        assert no == s_no  # the order number is not personal data and is copied as it is
    assert rows(mask_dbs.dst, "SELECT DISTINCT channel FROM orders") == [("test",)]
    assert rows(mask_dbs.dst, "SELECT SUM(amount) FROM orders") == rows(
        mask_dbs.src, "SELECT SUM(amount) FROM orders"
    )


def test_check_passes_on_masked_copy(copied: Path) -> None:
    proc = run("--rules", str(copied), "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no unmasked personal data" in proc.stdout


def test_check_finds_what_was_left(mask_dbs: MaskDbs, copied: Path, tmp_path: Path) -> None:
    # Rules without the note column: the copy leaves phones and ID numbers in customers.note.
    partial = tmp_path / "partial.yml"
    tables = RULES.replace("    note: mask\n", "")
    dst2 = mask_dbs.dst  # copy again into the same target with the weaker rules
    partial.write_text(mask_dbs.rules_yaml(tables, dst=dst2))
    assert run("--rules", str(partial)).returncode == 0
    proc = run("--rules", str(partial), "--check")
    assert proc.returncode == 1
    assert re.search(r"customers\.note\s+id_number\s+300", proc.stdout)
    assert re.search(r"customers\.note\s+mobile\s+300", proc.stdout)
    # A pseudonym column holding an original value is found by comparing with the source.
    original = mask_dbs.customers[0]["phone"]
    conn = root_connect(mask_dbs.dst)
    with conn.cursor() as cur:
        cur.execute("UPDATE customers SET phone = %s WHERE id = 1", (original,))
    conn.close()
    proc = run("--rules", str(partial), "--check")
    assert re.search(r"customers\.phone\s+unchanged\s+1\b", proc.stdout)
    assert original not in proc.stdout
    # put the masked copy back for the other tests of this module
    assert run("--rules", str(copied)).returncode == 0


@pytest.mark.parametrize("address", ["127.0.0.1:3306", "localhost:3306"])
def test_refuses_to_write_into_the_source(mask_dbs: MaskDbs, tmp_path: Path, address: str) -> None:
    before = rows(mask_dbs.src, "CHECKSUM TABLE customers, orders")
    rules = tmp_path / "same.yml"
    rules.write_text(mask_dbs.rules_yaml(RULES, dst=mask_dbs.src, dst_address=address))
    proc = run("--rules", str(rules))
    assert proc.returncode == 1
    assert "is the source database: refusing to write into the source" in proc.stderr
    assert rows(mask_dbs.src, "CHECKSUM TABLE customers, orders") == before


def test_rules_that_do_not_fit_the_schema(mask_dbs: MaskDbs, tmp_path: Path) -> None:
    rules = tmp_path / "bad.yml"
    rules.write_text(
        mask_dbs.rules_yaml(
            "  customers: {nickname: mask, created: mask, email: pseudonym}\n"
            "  invoices: {title: mask}\n  orders: {order_no: null}\n"
        )
    )
    proc = run("--rules", str(rules))
    assert proc.returncode == 1
    for text in (
        "tables.customers.nickname: no such column",
        "tables.customers.created: mask needs a text column, not date",
        "tables.invoices: no such table",
        "tables.orders.order_no: null on a NOT NULL column",
    ):
        assert text in proc.stderr


def test_bad_rule_names_file_and_line(mask_dbs: MaskDbs, tmp_path: Path) -> None:
    rules = tmp_path / "typo.yml"
    rules.write_text(mask_dbs.rules_yaml("  customers:\n    phone: pseudonymise\n"))
    proc = run("--rules", str(rules))
    assert proc.returncode == 2
    assert f"{rules}:7: tables.customers.phone: input should be 'mask'" in proc.stderr
    rules.write_text(mask_dbs.rules_yaml("  customers:\n    phone: fixed\n"))
    proc = run("--rules", str(rules))
    assert proc.returncode == 2 and "fixed needs a value" in proc.stderr


def test_progress_bar_on_a_terminal(mask_dbs: MaskDbs, copied: Path) -> None:
    """On a terminal (here a pseudo-terminal) stderr shows a progress bar; piped, it does not."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a real size
    try:
        proc = subprocess.run(
            sscp_ops_cmd("mask", "db", "--rules", str(copied)),
            stdout=subprocess.PIPE,
            stderr=slave,
            timeout=120,
        )
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the other end is closed and drained
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 0
    tty = b"".join(chunks).decode("utf-8", "replace")
    assert re.search(r"customers: +\d+%\|", tty) and "rows/s" in tty
    piped = run("--rules", str(copied))
    assert piped.returncode == 0 and "rows/s" not in piped.stderr
