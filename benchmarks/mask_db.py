"""Benchmark ``sscp-ops mask db`` against a plain copy with ``mariadb-dump | mariadb``.

Run by hand (needs the local MariaDB, root without password on 127.0.0.1:3306)::

    .venv/bin/python benchmarks/mask_db.py [--customers 20000] [--orders 40000]

It builds a source database of generated Chinese personal data, then times, in the same run:
the reference (a plain, unmasked copy through mariadb-dump piped into mariadb), our copy with
no rules (the streaming copy alone), and our copy with the full masking rules. It prints rows
per second and the ratios against the reference, and drops its databases.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymysql

SCHEMA = """
CREATE TABLE customers (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(32) NOT NULL,
  phone VARCHAR(20) NOT NULL UNIQUE, id_number CHAR(18) NOT NULL UNIQUE, email VARCHAR(80),
  address VARCHAR(200), bank_card VARCHAR(24)) DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (id INT PRIMARY KEY AUTO_INCREMENT, order_no CHAR(18) NOT NULL,
  customer_phone VARCHAR(20) NOT NULL, amount DECIMAL(10,2) NOT NULL, KEY (customer_phone))
  DEFAULT CHARSET=utf8mb4;
"""
RULES = """\
  customers: {name: fake_name, phone: pseudonym, id_number: pseudonym, email: pseudonym,
              address: mask, bank_card: pseudonym}
  orders: {customer_phone: pseudonym}
"""


def connect(db: str | None = None) -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=db,
                           charset="utf8mb4", autocommit=True)  # fmt: skip


def fill(db: str, customers: int, orders: int) -> None:
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(42)
    phones, ids, rows = set(), set(), []
    while len(rows) < customers:
        phone, idn = fake.phone_number(), fake.ssn()
        if phone in phones or idn in ids:
            continue
        phones.add(phone)
        ids.add(idn)
        rows.append((fake.name(), phone, idn, fake.email(), fake.address(),
                     fake.credit_card_number()))  # fmt: skip
    conn = connect(db)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO customers (name, phone, id_number, email, address, bank_card)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )
        plist = [r[1] for r in rows]
        cur.executemany(
            "INSERT INTO orders (order_no, customer_phone, amount) VALUES (%s, %s, %s)",
            [("2026" + fake.numerify("#" * 14), fake.random_element(plist),
              fake.pydecimal(left_digits=4, right_digits=2, positive=True))
             for _ in range(orders)],
        )  # fmt: skip
    conn.close()


def timed(cmd: str | list[str], shell: bool = False) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, shell=shell, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=20000)
    ap.add_argument("--orders", type=int, default=40000)
    args = ap.parse_args()
    suffix = secrets.token_hex(4)
    src, ref, dst = (f"sscp_mask_{suffix}_{k}" for k in ("src", "ref", "dst"))
    root = connect()
    with root.cursor() as cur:
        for db in (src, ref, dst):
            cur.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
    try:
        conn = connect(src)
        with conn.cursor() as cur:
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    cur.execute(stmt)
        conn.close()
        fill(src, args.customers, args.orders)
        rows = args.customers + args.orders
        with tempfile.TemporaryDirectory() as tmp:
            key = Path(tmp) / "mask.key"
            key.write_text(secrets.token_hex(32))

            def rules_file(name: str, tables: str) -> str:
                path = Path(tmp) / name
                path.write_text(
                    f'source: {{address: "127.0.0.1:3306", user: root, database: {src}}}\n'
                    f'target: {{address: "127.0.0.1:3306", user: root, database: {dst}}}\n'
                    f"key_file: {key}\nbatch_size: 2000\ntables:\n{tables}"
                )
                return str(path)

            cli = [sys.executable, "-m", "sscp_ops", "mask", "db", "--rules"]
            reference = timed(
                f"mariadb-dump -h127.0.0.1 -uroot --single-transaction {src}"
                f" | mariadb -h127.0.0.1 -uroot {ref}",
                shell=True,
            )
            copy_only = timed([*cli, rules_file("copy.yml", "  customers: {}\n")])
            masked = timed([*cli, rules_file("mask.yml", RULES)])
        print(f"rows: {rows} ({args.customers} customers with 6 personal columns, "
              f"{args.orders} orders with 1)")  # fmt: skip
        for name, secs in (("mariadb-dump | mariadb (reference, no masking)", reference),
                           ("sscp-ops mask db, no rules (copy only)", copy_only),
                           ("sscp-ops mask db, full rules", masked)):  # fmt: skip
            print(f"{name:<50} {secs:7.2f} s {rows / secs:9.0f} rows/s"
                  f"  x{secs / reference:.2f} of reference")  # fmt: skip
    finally:
        with root.cursor() as cur:
            for db in (src, ref, dst):
                cur.execute(f"DROP DATABASE IF EXISTS {db}")
        root.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
