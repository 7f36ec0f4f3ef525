"""A charge point built on the Python `ocpp` 2.1.0 package's v201 module (an independent
OCPP 2.0.1 implementation that validates every payload, in both directions, against the OCPP
2.0.1 JSON schemas). Driven by ocpp/tests/gateway.rs::python_ocpp_201_charge_point_interoperates.

Usage: cp201.py <base url> <charge point id> <key>

It boots, reports a NotifyEvent, honours SetVariables (TxUpdatedInterval), and on
RequestStartTransaction runs a transaction on the EVSE asked for (Occupied, Authorize,
TransactionEvent Started with the register at Transaction.Begin, Updated with energy and
power every TxUpdatedInterval, pause and resume by charging profiles) until
RequestStopTransaction (Ended with reason Remote and the register at Transaction.End,
Available). It prints one line per step and exits 0 after the stop, 1 on any error,
including a schema violation on either side (the library answers those with a CALLERROR,
which is caught here).
"""

import asyncio

from common import FailOnCallError, connected, finish, now, run, say
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import (
    Action,
    AuthorizationStatusEnumType,
    BootReasonEnumType,
    ChargingProfileStatusEnumType,
    ChargingStateEnumType,
    ClearChargingProfileStatusEnumType,
    ConnectorStatusEnumType,
    EventNotificationEnumType,
    EventTriggerEnumType,
    MeasurandEnumType,
    ReadingContextEnumType,
    ReasonEnumType,
    RegistrationStatusEnumType,
    RequestStartStopStatusEnumType,
    SetVariableStatusEnumType,
    TransactionEventEnumType,
    TriggerReasonEnumType,
)

POWER_W = 360_000


class SimChargePoint(FailOnCallError, ChargePoint):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.interval = 10
        self.register_wh = 1000
        self.transaction_id = None
        self.evse_id = None
        self.seq_no = 0
        self.meter_task = None
        self.paused = False
        self.errors = []
        self.done = asyncio.Event()

    async def status(self, evse_id, status):
        await self.call(
            call.StatusNotification(
                timestamp=now(), connector_status=status, evse_id=evse_id, connector_id=1
            ),
            suppress=False,
        )

    def meter_value(self, context, power):
        return [
            {
                "timestamp": now(),
                "sampled_value": [
                    {
                        "value": self.register_wh,
                        "context": context,
                        "measurand": MeasurandEnumType.energy_active_import_register,
                        "unit_of_measure": {"unit": "Wh"},
                    },
                    {
                        "value": power,
                        "context": context,
                        "measurand": MeasurandEnumType.power_active_import,
                        "unit_of_measure": {"unit": "W"},
                    },
                ],
            }
        ]

    async def event(self, event_type, trigger, info, **kwargs):
        self.seq_no += 1
        return await self.call(
            call.TransactionEvent(
                event_type=event_type,
                timestamp=now(),
                trigger_reason=trigger,
                seq_no=self.seq_no,
                transaction_info={"transaction_id": self.transaction_id, **info},
                **kwargs,
            ),
            suppress=False,
        )

    @on(Action.set_variables)
    async def on_set_variables(self, set_variable_data, **kwargs):
        results = []
        for data in set_variable_data:
            name = data["variable"]["name"]
            say("variable", name, data["attribute_value"])
            if name == "TxUpdatedInterval":
                self.interval = int(data["attribute_value"])
            results.append(
                {
                    "attribute_status": SetVariableStatusEnumType.accepted,
                    "component": data["component"],
                    "variable": data["variable"],
                }
            )
        return call_result.SetVariables(set_variable_result=results)

    @on(Action.request_start_transaction)
    async def on_request_start(self, id_token, remote_start_id, evse_id=None, **kwargs):
        say("request start", id_token["id_token"], id_token["type"], evse_id)
        asyncio.create_task(self.run_transaction(id_token, remote_start_id, evse_id or 1))
        return call_result.RequestStartTransaction(status=RequestStartStopStatusEnumType.accepted)

    @on(Action.set_charging_profile)
    async def on_set_charging_profile(self, evse_id, charging_profile, **kwargs):
        periods = charging_profile["charging_schedule"][0]["charging_schedule_period"]
        self.paused = periods[0]["limit"] <= 0
        say("charging profile", "pause" if self.paused else "limit", charging_profile["transaction_id"])
        return call_result.SetChargingProfile(status=ChargingProfileStatusEnumType.accepted)

    @on(Action.clear_charging_profile)
    async def on_clear_charging_profile(self, **kwargs):
        self.paused = False
        say("charging profile cleared")
        return call_result.ClearChargingProfile(status=ClearChargingProfileStatusEnumType.accepted)

    @on(Action.request_stop_transaction)
    async def on_request_stop(self, transaction_id, **kwargs):
        say("request stop", transaction_id)
        if transaction_id != self.transaction_id:
            return call_result.RequestStopTransaction(status=RequestStartStopStatusEnumType.rejected)
        asyncio.create_task(self.stop_transaction())
        return call_result.RequestStopTransaction(status=RequestStartStopStatusEnumType.accepted)

    async def run_transaction(self, id_token, remote_start_id, evse_id):
        try:
            await self.status(evse_id, ConnectorStatusEnumType.occupied)
            auth = await self.call(call.Authorize(id_token=id_token), suppress=False)
            if auth.id_token_info["status"] != AuthorizationStatusEnumType.accepted:
                raise RuntimeError(f"not authorized: {auth}")
            self.transaction_id = f"py-{remote_start_id}"
            self.evse_id = evse_id
            started = await self.event(
                TransactionEventEnumType.started,
                TriggerReasonEnumType.remote_start,
                {
                    "charging_state": ChargingStateEnumType.charging,
                    "remote_start_id": remote_start_id,
                },
                id_token=id_token,
                evse={"id": evse_id, "connector_id": 1},
                meter_value=self.meter_value(ReadingContextEnumType.transaction_begin, 0),
            )
            if started.id_token_info["status"] != AuthorizationStatusEnumType.accepted:
                raise RuntimeError(f"TransactionEvent Started refused: {started}")
            say("transaction", self.transaction_id, "Accepted")
            self.meter_task = asyncio.create_task(self.meter_loop())
        except Exception as e:  # noqa: BLE001 - any failure fails the test
            self.errors.append(repr(e))
            say("error", repr(e))
            self.done.set()

    async def meter_loop(self):
        while True:
            await asyncio.sleep(self.interval)
            power = 0 if self.paused else POWER_W
            self.register_wh += power * self.interval // 3600
            state = (
                ChargingStateEnumType.suspended_evse
                if self.paused
                else ChargingStateEnumType.charging
            )
            await self.event(
                TransactionEventEnumType.updated,
                TriggerReasonEnumType.meter_value_periodic,
                {"charging_state": state},
                meter_value=self.meter_value(ReadingContextEnumType.sample_periodic, power),
            )
            say("meter values", self.register_wh)

    async def stop_transaction(self):
        try:
            if self.meter_task:
                self.meter_task.cancel()
            await self.event(
                TransactionEventEnumType.ended,
                TriggerReasonEnumType.remote_stop,
                {
                    "charging_state": ChargingStateEnumType.ev_connected,
                    "stopped_reason": ReasonEnumType.remote,
                },
                meter_value=self.meter_value(ReadingContextEnumType.transaction_end, 0),
            )
            await self.status(self.evse_id, ConnectorStatusEnumType.available)
            say("stopped", ReasonEnumType.remote)
        except Exception as e:  # noqa: BLE001
            self.errors.append(repr(e))
            say("error", repr(e))
        self.done.set()


async def main(base_url, cp_id, key):
    async with connected(base_url, cp_id, key, "ocpp2.0.1") as ws:
        cp = SimChargePoint(cp_id, ws, response_timeout=15)
        receiver = asyncio.create_task(cp.start())
        boot = await cp.call(
            call.BootNotification(
                charging_station={"model": "PyModel", "vendor_name": "PyVendor"},
                reason=BootReasonEnumType.power_up,
            ),
            suppress=False,
        )
        say("boot", boot.status, "interval", boot.interval)
        if boot.status != RegistrationStatusEnumType.accepted:
            raise RuntimeError("boot not accepted")
        await cp.call(call.Heartbeat(), suppress=False)
        await cp.call(
            call.NotifyEvent(
                generated_at=now(),
                seq_no=0,
                event_data=[
                    {
                        "event_id": 1,
                        "timestamp": now(),
                        "trigger": EventTriggerEnumType.alerting,
                        "actual_value": "true",
                        "event_notification_type": EventNotificationEnumType.hard_wired_notification,
                        "component": {"name": "ChargingStation"},
                        "variable": {"name": "Problem"},
                    }
                ],
            ),
            suppress=False,
        )
        say("notify event acknowledged")
        await cp.status(1, ConnectorStatusEnumType.available)
        await finish(cp, receiver)


if __name__ == "__main__":
    run(main)
