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
