"""What the Python charge points of the interop tests (cp.py for OCPP 1.6, cp201.py for 2.0.1)
share: the clock, the step log the Rust test reads, and failing on any CALLERROR this side
sends (the library sends one for a schema violation in what the gateway sent)."""

import base64
from datetime import datetime, timezone


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
