"""Fixtures for the masking tests: a source and a target database on the real MariaDB, each with
its own user and random password, filled with generated Chinese personal data; dropped after."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pymysql
import pytest
from helpers import missing

MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306

SCHEMA = """
CREATE TABLE customers (
  id INT PRIMARY KEY AUTO_INCREMENT,
  name VARCHAR(32) NOT NULL,
  phone VARCHAR(20) NOT NULL UNIQUE,
  id_number CHAR(18) NOT NULL UNIQUE,
  email VARCHAR(80),
  address VARCHAR(200),
  bank_card VARCHAR(24),
  note TEXT,
  phone_num BIGINT,
  created DATE NOT NULL,
  KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE orders (
  id INT PRIMARY KEY AUTO_INCREMENT,
  order_no CHAR(18) NOT NULL,
  customer_phone VARCHAR(20) NOT NULL,
  customer_id_number CHAR(18),
  channel VARCHAR(16),
  amount DECIMAL(10,2) NOT NULL,
  KEY (customer_phone)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 500;
"""


def root_connect(database: str | None = None) -> pymysql.Connection:
    try:
        return pymysql.connect(
            host=MYSQL_HOST,
            port=MYSQL_PORT,
            user="root",
            password="",
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=5,
        )
    except pymysql.MySQLError:
        missing("MariaDB on 127.0.0.1:3306 (root without password)")
        raise


@dataclass
class MaskDbs:
    src: str
    dst: str
    reader: str
    writer: str
    reader_pass: Path
    writer_pass: Path
    key_file: Path
    customers: list[dict]
    orders: list[dict]

    def rules_yaml(self, tables: str, **over: str) -> str:
        src = over.get("src", self.src)
        dst = over.get("dst", self.dst)
        dst_user = over.get("dst_user", self.writer)
        dst_pass = over.get("dst_pass", str(self.writer_pass))
        address = over.get("dst_address", f"{MYSQL_HOST}:{MYSQL_PORT}")
        return (
            f'source: {{address: "{MYSQL_HOST}:{MYSQL_PORT}", user: {self.reader}, '
            f"password_file: {self.reader_pass}, database: {src}}}\n"
            f'target: {{address: "{address}", user: {dst_user}, '
            f"password_file: {dst_pass}, database: {dst}}}\n"
            f"key_file: {self.key_file}\n"
            f"batch_size: 64\n"
            f"tables:\n{tables}"
        )


def _generate(n_customers: int, n_orders: int) -> tuple[list[dict], list[dict]]:
    from faker import Faker

    fake = Faker("zh_CN")
    fake.seed_instance(20261128)
    customers, phones, ids = [], set(), set()
    while len(customers) < n_customers:
        phone, idn = fake.phone_number(), fake.ssn(min_age=1, max_age=95)
        if phone in phones or idn in ids:
            continue
        phones.add(phone)
        ids.add(idn)
        customers.append(
            {
                "name": fake.name(),
                "phone": phone,
                "id_number": idn,
                "email": fake.email(),
                "address": fake.address(),
                "bank_card": fake.credit_card_number(),
                "note": f"客户来电 {phone}，身份证 {idn}",
                "phone_num": int(phone),
                "created": fake.date_between("-3y", "today"),
            }
        )
    orders = []
    for _ in range(n_orders):
        c = fake.random_element(customers)
        orders.append(
            {
                "order_no": "2026" + fake.numerify("##############"),
                "customer_phone": c["phone"],
                "customer_id_number": c["id_number"],
                "channel": fake.random_element(["app", "web", "wx"]),
                "amount": fake.pydecimal(left_digits=4, right_digits=2, positive=True),
            }
        )
    return customers, orders


def _insert(conn: pymysql.Connection, table: str, rows: list[dict]) -> None:
    cols = list(rows[0])
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
    with conn.cursor() as cur:
        cur.executemany(sql, [tuple(r[c] for c in cols) for r in rows])


@pytest.fixture(scope="module")
def mask_dbs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MaskDbs]:
    tmp = tmp_path_factory.mktemp("maskdb")
    suffix = secrets.token_hex(4)
    src, dst = f"sscp_mask_{suffix}_src", f"sscp_mask_{suffix}_dst"
    reader, writer = f"sscp_mr_{suffix}", f"sscp_mw_{suffix}"
    passwords = {reader: secrets.token_urlsafe(18), writer: secrets.token_urlsafe(18)}
    files = {}
    for user, pw in passwords.items():
        files[user] = tmp / f"{user}.pass"
        files[user].write_text(pw + "\n")
        files[user].chmod(0o600)
    key_file = tmp / "mask.key"
    key_file.write_bytes(secrets.token_bytes(32).hex().encode())
    customers, orders = _generate(300, 900)
    root = root_connect()
    try:
        with root.cursor() as cur:
            for db in (src, dst):
                cur.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
            for user, pw in passwords.items():
                for host in ("127.0.0.1", "localhost"):
                    cur.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY %s", (pw,))
                cur.execute(f"GRANT SELECT, SHOW VIEW ON {src}.* TO '{reader}'@'127.0.0.1'")
                cur.execute(f"GRANT SELECT, SHOW VIEW ON {src}.* TO '{reader}'@'localhost'")
            for host in ("127.0.0.1", "localhost"):
                cur.execute(f"GRANT ALL ON {dst}.* TO '{writer}'@'{host}'")
            # The writer can also read the source: so refusing to write into it is our doing.
            cur.execute(f"GRANT ALL ON {src}.* TO '{writer}'@'127.0.0.1'")
            cur.execute(f"USE {src}")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    cur.execute(stmt)
        _insert(root, "customers", customers)
        _insert(root, "orders", orders)
        yield MaskDbs(
            src, dst, reader, writer, files[reader], files[writer], key_file, customers, orders
        )
    finally:
        with root.cursor() as cur:
            for db in (src, dst):
                cur.execute(f"DROP DATABASE IF EXISTS {db}")
            for user in passwords:
                for host in ("127.0.0.1", "localhost"):
                    cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        root.close()
