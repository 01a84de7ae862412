"""Capture the SQL an operation sends, as short readable kinds: "BEGIN", "SELECT payouts_payout",
"UPDATE audit_claim", "INSERT audit_auditentry", "COMMIT".

Django records transaction control (BEGIN, COMMIT, ROLLBACK, savepoints) beside the statements, so
a list of kinds shows both what was sent and how it was framed. Shared by the tests that pin the
counts (tests/proof/test_statement_counts.py) and the bench that prints them (bench/statements.py).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK"})
_TABLE_AFTER = {
    "SELECT": re.compile(r'\bFROM\s+"?(\w+)"?', re.I),
    "UPDATE": re.compile(r'^UPDATE\s+"?(\w+)"?', re.I),
    "INSERT": re.compile(r'^INSERT\s+INTO\s+"?(\w+)"?', re.I),
    "DELETE": re.compile(r'^DELETE\s+FROM\s+"?(\w+)"?', re.I),
}


@dataclass(frozen=True)
class Captured:
    kinds: list[str]
    sql: list[str]
    result: Any = None
    error: BaseException | None = None

    @property
    def statements(self) -> int:
        """Everything but BEGIN/COMMIT/ROLLBACK."""
        return sum(kind not in CONTROL for kind in self.kinds)

    def split(self) -> tuple[int, int]:
        """(statements sent inside a transaction, statements sent outside any, i.e. autocommit)."""
        inside = outside = 0
        in_transaction = False
        for kind in self.kinds:
            if kind in CONTROL:
                in_transaction = kind == "BEGIN"
            elif in_transaction:
                inside += 1
            else:
                outside += 1
        return inside, outside

    def describe(self) -> str:
        inside, outside = self.split()
        text = f"{inside} statement{'s' * (inside != 1)} in {self.kinds.count('BEGIN')} transaction(s)"
        return text + (f" + {outside} outside" if outside else "")


def kind_of(sql: str) -> str:
    text = sql.strip()
    verb = text.split(None, 1)[0].upper() if text else ""
    if verb in CONTROL or verb in ("SAVEPOINT", "RELEASE"):
        return verb
    if verb == "WITH":  # a CTE: named by the writes it carries, in order
        writes = re.findall(r'\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', text, re.I)
        return "WITH " + ", ".join(f"{w.split()[0].upper()} {table}" for w, table in writes)
    outer = text
    while True:  # drop subqueries: the kind names the statement's own table
        shorter = re.sub(r"\([^()]*\)", "", outer)
        if shorter == outer:
            break
        outer = shorter
    match = _TABLE_AFTER.get(verb, re.compile("$^")).search(outer)
    kind = f"{verb} {match.group(1)}" if match else verb
    lock = re.search(r"\bFOR (NO KEY UPDATE|UPDATE|KEY SHARE|SHARE)\b", text, re.I)
    if verb == "SELECT" and lock:
        kind += f" FOR {lock.group(1).upper()}" + (" SKIP LOCKED" if re.search(r"\bSKIP LOCKED\b", text, re.I) else "")
    if verb == "INSERT" and re.search(r"\bON CONFLICT\b", text, re.I):
        kind += " ON CONFLICT"
    return kind


def capture(operation: Callable[[], Any], *, expect: type[BaseException] | None = None) -> Captured:
    """Run `operation` and return the kinds of what it sent; `expect` names an exception it must raise."""
    result, error = None, None
    with CaptureQueriesContext(connection) as queries:
        try:
            result = operation()
        except BaseException as exc:
            if expect is None or not isinstance(exc, expect):
                raise
            error = exc
    if expect is not None and error is None:
        raise AssertionError(f"expected {expect.__name__}, the operation returned {result!r}")
    sql = [q["sql"] for q in queries.captured_queries]
    return Captured(kinds=[kind_of(s) for s in sql], sql=sql, result=result, error=error)
