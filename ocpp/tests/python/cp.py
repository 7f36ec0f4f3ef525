"""A charge point built on the Python `ocpp` 2.1.0 package (an independent OCPP 1.6J
implementation that validates every payload, in both directions, against the OCPP JSON
schemas). Driven by ocpp/tests/gateway.rs::python_ocpp_charge_point_interoperates.

Usage: cp.py <base url> <charge point id> <key>

It boots, honours ChangeConfiguration, and on RemoteStartTransaction runs a transaction
(Preparing, Authorize, StartTransaction, Charging, MeterValues with energy and power every
MeterValueSampleInterval) until RemoteStopTransaction (StopTransaction reason Remote, Finishing,
Available). It prints one line per step and exits 0 after the stop, 1 on any error, including
a schema violation on either side (the library answers those with a CALLERROR, which is caught
here).
"""

import asyncio

from common import FailOnCallError, connected, finish, now, run, say
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    ChargePointErrorCode,
    ChargePointStatus,
    ChargingProfileStatus,
    ClearChargingProfileStatus,
    ConfigurationStatus,
    Measurand,
    ReadingContext,
    Reason,
    RegistrationStatus,
    RemoteStartStopStatus,
    UnitOfMeasure,
)

POWER_W = 360_000


class SimChargePoint(FailOnCallError, ChargePoint):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.interval = 10
        self.register_wh = 1000
        self.transaction_id = None
        self.meter_task = None
        self.paused = False
        self.errors = []
        self.done = asyncio.Event()

    async def status(self, connector_id, status):
        await self.call(
            call.StatusNotification(
                connector_id=connector_id,
                error_code=ChargePointErrorCode.no_error,
                status=status,
                timestamp=now(),
            ),
            suppress=False,
        )

    @on(Action.change_configuration)
    async def on_change_configuration(self, key, value, **kwargs):
        say("configuration", key, value)
        if key == "MeterValueSampleInterval":
            self.interval = int(value)
        return call_result.ChangeConfiguration(status=ConfigurationStatus.accepted)

    @on(Action.remote_start_transaction)
    async def on_remote_start(self, id_tag, connector_id=None, charging_profile=None, **kwargs):
        say("remote start", id_tag, connector_id)
        asyncio.create_task(self.run_transaction(id_tag, connector_id or 1))
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    @on(Action.set_charging_profile)
    async def on_set_charging_profile(self, connector_id, cs_charging_profiles, **kwargs):
        periods = cs_charging_profiles["charging_schedule"]["charging_schedule_period"]
        self.paused = periods[0]["limit"] <= 0
        say("charging profile", "pause" if self.paused else "limit")
        return call_result.SetChargingProfile(status=ChargingProfileStatus.accepted)

    @on(Action.clear_charging_profile)
    async def on_clear_charging_profile(self, **kwargs):
        self.paused = False
        say("charging profile cleared")
        return call_result.ClearChargingProfile(status=ClearChargingProfileStatus.accepted)

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, transaction_id, **kwargs):
        say("remote stop", transaction_id)
        if transaction_id != self.transaction_id:
            return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.rejected)
        asyncio.create_task(self.stop_transaction(Reason.remote))
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    async def run_transaction(self, id_tag, connector_id):
        try:
            await self.status(connector_id, ChargePointStatus.preparing)
            auth = await self.call(call.Authorize(id_tag=id_tag), suppress=False)
            if auth.id_tag_info["status"] != AuthorizationStatus.accepted:
                raise RuntimeError(f"not authorized: {auth}")
            started = await self.call(
                call.StartTransaction(
                    connector_id=connector_id,
                    id_tag=id_tag,
                    meter_start=self.register_wh,
                    timestamp=now(),
                ),
                suppress=False,
            )
            if started.id_tag_info["status"] != AuthorizationStatus.accepted:
                raise RuntimeError(f"StartTransaction refused: {started}")
            self.transaction_id = started.transaction_id
            self.connector_id = connector_id
            say("transaction", self.transaction_id, "Accepted")
            await self.status(connector_id, ChargePointStatus.charging)
            self.meter_task = asyncio.create_task(self.meter_loop(connector_id))
        except Exception as e:  # noqa: BLE001 - any failure fails the test
            self.errors.append(repr(e))
            say("error", repr(e))
            self.done.set()

    async def meter_loop(self, connector_id):
        while True:
            await asyncio.sleep(self.interval)
            power = 0 if self.paused else POWER_W
            self.register_wh += power * self.interval // 3600
            await self.call(
                call.MeterValues(
                    connector_id=connector_id,
                    transaction_id=self.transaction_id,
                    meter_value=[
                        {
                            "timestamp": now(),
                            "sampled_value": [
                                {
                                    "value": str(self.register_wh),
                                    "context": ReadingContext.sample_periodic,
                                    "measurand": Measurand.energy_active_import_register,
                                    "unit": UnitOfMeasure.wh,
                                },
                                {
                                    "value": str(power),
                                    "context": ReadingContext.sample_periodic,
                                    "measurand": Measurand.power_active_import,
                                    "unit": UnitOfMeasure.w,
                                },
                            ],
                        }
                    ],
                ),
                suppress=False,
            )
            say("meter values", self.register_wh)

    async def stop_transaction(self, reason):
        try:
            if self.meter_task:
                self.meter_task.cancel()
            await self.call(
                call.StopTransaction(
                    meter_stop=self.register_wh,
                    timestamp=now(),
                    transaction_id=self.transaction_id,
                    reason=reason,
                ),
                suppress=False,
            )
            await self.status(self.connector_id, ChargePointStatus.finishing)
            await self.status(self.connector_id, ChargePointStatus.available)
            say("stopped", reason)
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))
            say("error", repr(e))
        self.done.set()


async def main(base_url, cp_id, key):
    async with connected(base_url, cp_id, key, "ocpp1.6") as ws:
        cp = SimChargePoint(cp_id, ws, response_timeout=15)
        receiver = asyncio.create_task(cp.start())
        boot = await cp.call(
            call.BootNotification(charge_point_model="PyModel", charge_point_vendor="PyVendor"),
            suppress=False,
        )
        say("boot", boot.status, "interval", boot.interval)
        if boot.status != RegistrationStatus.accepted:
            raise RuntimeError("boot not accepted")
        await cp.call(call.Heartbeat(), suppress=False)
        for connector in (0, 1):
            await cp.status(connector, ChargePointStatus.available)
        await finish(cp, receiver)


if __name__ == "__main__":
    run(main)
