"""The audit trail's hash chain, and its verification (what `manage.py verify_audit_trail` runs).

Every AuditEntry carries `seq` (its place in its object's chain, from 1), `previous_hash` (the hash
of the row before it, "" for the first) and `hash` = SHA-256 of "<previous_hash>:<seq>:<digest>",
where digest is the SHA-256 of the row's content in a canonical form (content_digest()). The
receiver computes the digest in Python and the link inside its one INSERT (audit.receivers), so a
transition sends no extra statement.

Chains are per object: two transitions of different objects never wait on each other. Within one
object the writers are already serialised: see audit.receivers.insert_audit_entry.

verify_audit_trail() walks every chain and reports
- an edited row: its hash does not match its content;
- an inserted row, or a row whose predecessor was edited to match: its previous_hash is not the
  hash of the row before it (with its seq taken, a row cannot be slipped in without renumbering);
- deleted rows: a gap in seq (a chain that does not start at 1, or skips a number);
- deleted newest rows, when the object still exists: the last row's target is not the object's
  current state.
It cannot detect: the newest rows of a chain deleted when the state they led to equals the
earlier one (a -> b -> a), a whole chain deleted, or a chain rewritten end to end by someone who
can write SQL (the hash has no secret: it shows tampering, it does not prevent it).
"""

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from audit.beacons import emit_beacon
from audit.models import AuditEntry

CONTENT_FIELDS = (
    "object_id",
    "field",
    "transition",
    "source",
    "target",
    "actor_id",
    "actor_label",
    "reason",
    "correlation_id",
)
AUDIT_TRAIL_BROKEN = "audit_trail_broken"  # a critical beacon kind (declared in AuditConfig.ready())
MAX_PROBLEMS_IN_BEACON = 20
HEAD_BATCH = 1000


def content_digest(*, object_type: str, at: datetime, **values: Any) -> str:
    """SHA-256 of one row's content. object_type is "<app_label>.<model>" (not the content type's
    id, which another database may number differently); `at` in UTC to the microsecond."""
    content = {name: values[name] for name in CONTENT_FIELDS}
    content["object_type"] = object_type
    content["at"] = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def chain_hash(*, previous_hash: str, seq: int, digest: str) -> str:
    """What the receiver's INSERT computes in SQL (audit.receivers): keep the two in step."""
    return hashlib.sha256(f"{previous_hash}:{seq}:{digest}".encode()).hexdigest()


@dataclass
class AuditTrailReport:
    rows: int = 0
    chains: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            return f"audit trail OK: {self.rows} rows, {self.chains} chains"
        head = f"audit trail BROKEN: {len(self.problems)} problem(s) in {self.rows} rows, {self.chains} chains"
        return "\n".join([head, *self.problems])


def verify_audit_trail(*, beacon: bool = False) -> AuditTrailReport:
    """Walk every chain on one snapshot (REPEATABLE READ) and recompute every hash. With
    beacon=True a broken trail also raises the critical beacon audit_trail_broken."""
    report = AuditTrailReport()
    connection = transaction.get_connection()
    outermost = not connection.in_atomic_block and connection.vendor == "postgresql"
    with transaction.atomic():
        if outermost:  # else the caller's transaction is the snapshot (a test's, say; SQLite's is serial)
            connection.cursor().execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        heads = []
        for chain in _chains():
            report.rows += len(chain)
            report.chains += 1
            report.problems += _check_chain(chain)
            heads.append(chain[-1])
        report.problems += _check_heads(heads)
    if beacon and not report.ok:
        emit_beacon(AUDIT_TRAIL_BROKEN, problems=report.problems[:MAX_PROBLEMS_IN_BEACON], total=len(report.problems))
    return report


def _chains() -> Iterator[list[AuditEntry]]:
    rows = AuditEntry.objects.order_by("content_type_id", "object_id", "seq", "id").iterator(chunk_size=2000)
    chain: list[AuditEntry] = []
    for row in rows:
        if chain and (row.content_type_id, row.object_id) != (chain[0].content_type_id, chain[0].object_id):
            yield chain
            chain = []
        chain.append(row)
    if chain:
        yield chain


def _check_chain(chain: list[AuditEntry]) -> list[str]:
    problems = []
    previous: AuditEntry | None = None
    for row in chain:
        name = _name(row)
        expected_seq = previous.seq + 1 if previous else 1
        if row.seq > expected_seq:
            problems.append(f"{name}: rows missing before it (seq {expected_seq}..{row.seq - 1}): deleted rows")
        elif row.seq < expected_seq:  # only with audit_obj_seq dropped: two rows in one place
            problems.append(f"{name}: a second row at seq {row.seq}: a forked chain")
        if row.previous_hash != (previous.hash if previous else ""):
            problems.append(f"{name}: previous_hash does not link to the row before it: a row inserted or replaced")
        if row.hash != chain_hash(previous_hash=row.previous_hash, seq=row.seq, digest=_digest(row)):
            problems.append(f"{name}: hash does not match its content: the row was edited")
        previous = row
    return problems


def _check_heads(heads: list[AuditEntry]) -> list[str]:
    """The objects' states anchor their chains' ends: deleting the newest rows leaves a last row
    whose target is not the state the object is in. One query per model and batch of objects."""
    problems = []
    by_model: dict[tuple[int, str], list[AuditEntry]] = {}
    for last in heads:
        by_model.setdefault((last.content_type_id, last.field), []).append(last)
    for (content_type_id, state_field), lasts in by_model.items():
        model = ContentType.objects.get_for_id(content_type_id).model_class()
        if model is None or state_field not in {f.name for f in model._meta.concrete_fields}:
            continue
        for start in range(0, len(lasts), HEAD_BATCH):
            batch = lasts[start : start + HEAD_BATCH]
            states = model._base_manager.filter(pk__in=[last.object_id for last in batch])
            current = {str(pk): str(state) for pk, state in states.values_list("pk", state_field)}
            problems += [
                f"{_name(last)}: the newest row leads to '{last.target}' but the object is "
                f"'{current[last.object_id]}': newer rows deleted, or the state changed without a transition"
                for last in batch
                if last.object_id in current and current[last.object_id] != last.target
            ]  # an object that is gone keeps its chain as evidence: nothing to compare
    return problems


def _digest(row: AuditEntry) -> str:
    content_type = ContentType.objects.get_for_id(row.content_type_id)
    values = {name: getattr(row, name) for name in CONTENT_FIELDS}
    return content_digest(object_type=f"{content_type.app_label}.{content_type.model}", at=row.at, **values)


def _name(row: AuditEntry) -> str:
    content_type = ContentType.objects.get_for_id(row.content_type_id)
    return f"audit row id={row.pk} ({content_type.app_label}.{content_type.model} #{row.object_id}, seq {row.seq})"
