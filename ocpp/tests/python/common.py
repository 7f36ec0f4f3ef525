"""What the Python charge points of the interop tests (cp.py for OCPP 1.6, cp201.py for 2.0.1)
share: the clock, the step log the Rust test reads, failing on any CALLERROR this side sends
(the library sends one for a schema violation in what the gateway sent), the connection with
its subprotocol check, the end of a run and the entry point."""

import asyncio
import base64
import contextlib
import sys
from datetime import datetime, timezone

import websockets


def now():
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def say(*parts):
    print(*parts, flush=True)


def basic_auth(cp_id, key):
    token = base64.b64encode(f"{cp_id}:{key}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class FailOnCallError:
    """Mixed into a ChargePoint: records every CALLERROR it sends in `self.errors`."""

    async def _send(self, message):
        # A CALLERROR from this side means the central system sent something the library
        # refused (schema validation included): the test must fail.
        if message.startswith("[4"):
            self.errors.append(message)
            say("ValidationError or CALLERROR sent:", message)
        await super()._send(message)


@contextlib.asynccontextmanager
async def connected(base_url, cp_id, key, subprotocol):
    """The station's WebSocket, Basic-authenticated, offering only `subprotocol`; fails unless
    the gateway negotiated it."""
    async with websockets.connect(
        f"{base_url}/{cp_id}",
        subprotocols=[subprotocol],
        additional_headers=basic_auth(cp_id, key),
    ) as ws:
        if ws.subprotocol != subprotocol:
            raise RuntimeError(f"negotiated {ws.subprotocol!r}")
        yield ws


async def finish(cp, receiver):
    """Waits for the scenario `cp` runs to end, then fails on any error it recorded."""
    await asyncio.wait_for(cp.done.wait(), timeout=90)
    receiver.cancel()
    if cp.errors:
        raise RuntimeError(f"errors: {cp.errors}")
    say("done")


def run(main):
    """Runs `main(base_url, cp_id, key)` from the command line; exits 1 with FAILED on error."""
    try:
        asyncio.run(main(*sys.argv[1:4]))
    except Exception as e:  # noqa: BLE001
        print("FAILED", repr(e), file=sys.stderr, flush=True)
        sys.exit(1)
