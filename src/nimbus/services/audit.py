"""The audit trail: what the other services record, and what administrators and each user read.

Recording never fails the request it belongs to: an event the store does not take is logged
(a WARNING on `nimbus.audit` naming its kind, never a secret) and counted
(nimbus.metrics.audit_failure), and the request goes on. Events past the retention are removed
by DynamoDB's TTL, and on the relational stores a batch at a time, at most once an interval per
process, by the next event recorded after it.
"""

import logging
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta

from nimbus import metrics
from nimbus.domain.audit import AuditEvent, AuditKind
from nimbus.domain.errors import NimbusError, PermissionDenied
from nimbus.domain.ids import new_id
from nimbus.domain.paging import Page
from nimbus.domain.principals import Principal
from nimbus.logs import REQUEST_ID
from nimbus.services.clock import Clock, utc_now
from nimbus.services.reads import read_only
from nimbus.storage.base import AuditStore

log = logging.getLogger("nimbus.audit")

PRUNE_EVERY = timedelta(hours=1)
PRUNE_BATCH = 500  # rows one prune removes at most, so that no request pays for many


class AuditTrail:
    def __init__(
        self,
        store: AuditStore,
        *,
        retention: timedelta,
        clock: Clock = utc_now,
        prune_every: timedelta = PRUNE_EVERY,
    ) -> None:
        self._store = store
        self._retention = retention
        self._clock = clock
        self._prune_every = prune_every
        self._next_prune: datetime | None = None  # None: at the first event
        self._pruning = threading.Lock()

    def record(
        self,
        kind: AuditKind,
        *,
        actor: str | None = None,
        subject: str | None = None,
        client: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """Append an event, stamped with the time and the current request's id; a store that
        does not take it is logged and counted, never raised."""
        now = self._clock()
        event = AuditEvent(
            id=new_id(),
            at=now,
            kind=kind,
            actor=actor,
            subject=subject,
            client=client,
            request_id=REQUEST_ID.get(),
            detail=dict(detail or {}),
        )
        try:
            self._store.append(event, expires_at=now + self._retention)
        except Exception as exc:  # whatever it was, the request goes on
            _lost(kind, "audit event lost", exc)
            metrics.audit_failure()
            return
        self._prune_if_due(now)

    @read_only
    def list(
        self,
        actor: Principal,
        *,
        subject: str | None = None,
        kind: AuditKind | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        """The whole trail, newest first (administrators)."""
        if not actor.is_admin:
            raise PermissionDenied("Administrators only", code="admin_only")
        return self._store.list(subject=subject, kind=kind, limit=limit, cursor=cursor)

    @read_only
    def events_of(
        self, actor: Principal, *, limit: int, cursor: str | None = None
    ) -> Page[AuditEvent]:
        """The caller's own security activity, newest first: the events whose subject it is."""
        return self._store.list(subject=actor.user_id, kind=None, limit=limit, cursor=cursor)

    def list_all(
        self,
        *,
        subject: str | None = None,
        kind: AuditKind | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[AuditEvent]:
        """The trail for the command line (which runs with the operator's authority)."""
        return self._store.list(subject=subject, kind=kind, limit=limit, cursor=cursor)

    def prune(self, now: datetime | None = None) -> int:
        """Remove one batch of events past their retention; how many went."""
        return self._store.prune(now or self._clock(), limit=PRUNE_BATCH)

    def _prune_if_due(self, now: datetime) -> None:
        if (self._next_prune is not None and now < self._next_prune) or not self._pruning.acquire(
            blocking=False
        ):
            return
        try:
            self._next_prune = now + self._prune_every
            if self.prune(now) >= PRUNE_BATCH:
                self._next_prune = now  # more are due: the next event removes another batch
        except Exception as exc:  # pruning is housekeeping: the request goes on
            _lost(None, "audit prune failed", exc)
        finally:
            self._pruning.release()


def _lost(kind: AuditKind | None, message: str, exc: Exception) -> None:
    """One WARNING for an event (or a prune) the store did not take: a store's error in one
    line, anything else (a bug) with its traceback. Never the event's detail."""
    fields: dict[str, object] = {"error": type(exc).__name__}
    if kind is not None:
        fields["audit_kind"] = kind.value
    if isinstance(exc, NimbusError):
        fields["cause"] = exc.message
    log.warning(
        "%s: %s",
        message,
        kind.value if kind is not None else "retention",
        extra={"fields": fields},
        exc_info=None if isinstance(exc, NimbusError) else exc,
    )
