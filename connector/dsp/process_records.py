"""What the negotiation and transfer services do alike with their stored processes, once.

Both learn the provider's PID from the ACK of the consumer's initial request and both answer
the outbox's "who is this addressed to"; only the record kind, the request message and the
ACK type differ, which each service states in three class attributes and two accessors.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, ClassVar

from aiohttp import web

from connector.dsp.messages import MessageError, parse_message
from connector.store import OutboxMessage, Store
from connector.store import Role as StoreRole

log = logging.getLogger(__name__)


_AUDIT_PAGE = 1000


class ProcessRecords:
    """Mixin for a DSP process service keeping one record kind in the store."""

    #: The consumer's initial request message kind, the ACK's model and the audit prefix.
    REQUEST_KIND: ClassVar[str]
    ACK_TYPE: ClassVar[type]
    AUDIT_PREFIX: ClassVar[str]

    did: str
    _app: web.Application

    @property
    def store(self) -> Store:
        from connector.app import STORE  # the app module imports the services lazily

        return self._app[STORE]

    async def _received(self, tx: Any, record_id: str) -> list[Any]:
        """The audit trail of messages received on a process, oldest first (every page)."""
        action = f"{self.AUDIT_PREFIX}.received"
        found: list[Any] = []
        after = 0
        while True:
            page = await tx.list_audit(subject_id=record_id, after_seq=after, limit=_AUDIT_PAGE)
            found.extend(e for e in page if e.action == action)
            if len(page) < _AUDIT_PAGE:
                return found
            after = page[-1].seq

    async def _is_retry(self, tx: Any, record_id: str, print_: str) -> bool:
        """Whether a message seen before (``print_``) was the last one received on the
        process: only then is it a retry, answered as the first time and changing nothing.
        The same message after the process moved on is new and judged by the state machine
        (a provider resumes with the TransferStartMessage it started with, TCK TP_C:01-04;
        an identical offer after a counter-offer, CN:03-04)."""
        received = await self._received(tx, record_id)
        return not received or received[-1].details.get("fingerprint") == print_

    async def _first_answer(self, tx: Any, record_id: str,
                            print_: str) -> tuple[int, dict[str, Any]] | None:
        """The status and ACK a message got the first time (``None``: not on record)."""
        for event in reversed(await self._received(tx, record_id)):
            if event.details.get("fingerprint") == print_:
                return int(event.details["status"]), dict(event.details["ack"])
        return None

    async def _get_record(self, session: Any, pid: str, *, for_update: bool = False) -> Any:
        raise NotImplementedError

    async def _put_record(self, tx: Any, record: Any) -> Any:
        raise NotImplementedError

    async def counterparty_of(self, pid: str) -> str | None:
        """The DID an outbound message of process ``pid`` is addressed to (None: unknown)."""
        async with self.store.read() as reader:
            record = await self._get_record(reader, pid)
        return None if record is None else record.counterparty_did

    async def on_delivered(self, outbox: OutboxMessage, body: Any) -> None:
        """The peer ACKed ``outbox``: learn the provider PID from an initial request's ACK."""
        if outbox.kind != self.REQUEST_KIND or not isinstance(body, dict):
            return
        try:
            ack = parse_message(body)
        except MessageError as exc:
            log.warning("ACK of %s is not a DSP message: %s", outbox.id, exc)
            return
        if not isinstance(ack, self.ACK_TYPE) or ack.consumer_pid != outbox.process_id:
            log.warning("ACK of %s names another process", outbox.id)
            return
        async with self.store.transaction() as tx:
            record = await self._get_record(tx, outbox.process_id, for_update=True)
            if record is None or record.role is not StoreRole.CONSUMER:
                return
            if record.counterparty_pid is None:
                await self._put_record(tx, replace(record, counterparty_pid=ack.provider_pid))
            elif record.counterparty_pid != ack.provider_pid:
                await tx.append_audit(actor=self.did, action=f"{self.AUDIT_PREFIX}.ack-mismatch",
                                      subject_id=record.id, details={"ack": body})
