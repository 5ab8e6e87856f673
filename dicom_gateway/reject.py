"""Refusing an association from the EVT_REQUESTED handler so that the A-ASSOCIATE-RJ reaches the sender."""

from __future__ import annotations

import time
from typing import Any

REJECT_FLUSH_SECONDS = 5.0  # bound on the wait for an A-ASSOCIATE-RJ to leave (a stuck peer socket)


def reject(assoc: Any, result: int, source: int, diagnostic: int) -> None:
    """Send an A-ASSOCIATE-RJ from the EVT_REQUESTED handler and wait until the DUL thread has written it.

    ``send_reject`` only queues the PDU; as soon as the handler returns, pynetdicom closes the socket. When
    nothing follows the reject in the handler (the transient refusal while the database is down), the socket
    was closed before the DUL thread had sent the PDU, and the sender saw its connection dropped ("Peer
    aborted Association") instead of a transient rejection it would retry. After the DUL sends it, its state
    is Sta13 (awaiting the peer's close), or Sta1 once the peer has closed."""
    assoc.acse.send_reject(result, source, diagnostic)
    dul = assoc.dul
    deadline = time.monotonic() + REJECT_FLUSH_SECONDS
    while (dul.state_machine.current_state not in ("Sta13", "Sta1") or not dul.to_provider_queue.empty()) \
            and dul.is_alive() and time.monotonic() < deadline:
        time.sleep(0.002)
