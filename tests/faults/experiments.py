"""The fault experiments' moves: missions brought to in_progress with CRAs filed, a surge of
validations delivered like the platform does, and the faults run beside it.

`FaultSize` says how big: the short version runs in `make test` (seconds), the full one
(`CONTRACTING_FAULTS=full`, `make faults`) is the issue's: 200 validations, 5 worker kills…
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tests.faults.invariants import Month
from tests.support.gateway import (
    GatewayTestClient,
    cra_instants,
    file_cra,
    month_open,
    past_month,
    view,
)
from tests.support.platform import Platform
from tests.support.supervised import SupervisedStack
from tests.support.waits import eventually

SETUP = 90.0
"""Bound of each wait while missions are set up: 50 of them at once keep 2 cores busy."""

OFFERS = ("basic", "express", "flash")  # the fixed-date offers of a French provider


@dataclass(frozen=True)
class FaultSize:
    """How many missions, months, kills and generated bodies an experiment uses."""

    full: bool
    missions: int
    months: int
    worker_kills: int
    bodies: int
    postgres_down: float
    temporal_down: float
    smtp_hang: float
    gateway_env: tuple[tuple[str, str], ...] = ()
    """Gateway settings of the stack: the short size shortens the claim lease (30 s by
    default), so a dead gateway's claims lapse, and are taken over, within its time."""

    @property
    def validations(self) -> int:
        return self.missions * self.months


SHORT = FaultSize(
    False,
    5,
    2,
    0,
    500,
    0.0,
    0.0,
    0.0,
    gateway_env=(
        ("CONTRACTING_GATEWAY_CLAIM_LEASE_SECONDS", "6"),
        ("CONTRACTING_GATEWAY_RPC_TIMEOUT_SECONDS", "3"),
    ),
)
FULL = FaultSize(True, 50, 4, 5, 10_000, 60.0, 30.0, 30.0)


def fault_size() -> FaultSize:
    """`CONTRACTING_FAULTS=full` (what `make faults` sets) for the issue's sizes;
    `CONTRACTING_FAULTS_MISSIONS=N` changes the number of missions of each experiment."""
    size = FULL if os.environ.get("CONTRACTING_FAULTS") == "full" else SHORT
    missions = os.environ.get("CONTRACTING_FAULTS_MISSIONS")
    return dataclasses.replace(size, missions=int(missions)) if missions else size


async def missions_with_filed_cras(
    gateway: GatewayTestClient,
    missions: int,
    months: int,
    parallel: int = 10,
    emails: dict[int, str] | None = None,
) -> list[Month]:
    """`missions` missions in progress since the 1st of `past_month(months)`, each month's
    CRA filed (not validated): the months a surge validates, oldest first per mission.
    `emails` gives the provider of mission number N an address of its own."""
    wanted = [past_month(i) for i in range(months, 0, -1)]
    gate = asyncio.Semaphore(parallel)

    async def one(number: int) -> list[Month]:
        async with gate:
            offer = OFFERS[number % len(OFFERS)]
            address = (emails or {}).get(number)
            if address is None:
                pid, _ = await month_open(gateway, offer, number, months_ago=months, within=SETUP)
            else:
                pid, _ = await month_open(
                    gateway, offer, number, months_ago=months, within=SETUP, email=address
                )

            async def all_open() -> bool:
                return set(wanted) <= set((await view(gateway, pid)).state.cra_months)

            await eventually(all_open, within=SETUP)
            for month in wanted:
                await file_cra(gateway, pid, month, cra_instants(month)[0])
            return [(pid, month) for month in wanted]

    opened = await asyncio.gather(*(one(n) for n in range(1, missions + 1)))
    return [month for months_of_one in opened for month in months_of_one]


async def surge(
    platform: Platform,
    months: list[Month],
    fault: Callable[[], Awaitable[None]],
    parallel: int = 10,
) -> None:
    """Validate every month (a mission's in order, missions side by side) while `fault` runs."""
    by_mission: dict[str, list[str]] = {}
    for mission, month in months:
        by_mission.setdefault(mission, []).append(month)
    gate = asyncio.Semaphore(parallel)

    async def one(mission: str, its_months: list[str]) -> None:
        for month in its_months:
            async with gate:
                await platform.validate(mission, month)

    await asyncio.gather(fault(), *(one(m, ms) for m, ms in by_mission.items()))


async def after_accepted(platform: Platform, count: int, within: float = 60.0) -> None:
    """Wait (bounded) until `count` deliveries were answered 2xx: a fault lands mid-surge;
    if they are not, the fault lands anyway after `within` seconds."""
    with contextlib.suppress(TimeoutError):
        await platform.until_accepted(count, within)


def kill_worker_repeatedly(
    stack: SupervisedStack, platform: Platform, kills: int, validations: int
) -> Callable[[], Awaitable[None]]:
    """SIGKILL the worker `kills` times, spread over the surge; each time it comes back."""

    async def fault() -> None:
        for k in range(1, kills + 1):
            await after_accepted(platform, k * validations // (kills + 1))
            pid = await asyncio.to_thread(stack.kill, "worker")
            print(f"  worker SIGKILLed ({k}/{kills}), back as pid {pid}", flush=True)

    return fault


def kill_gateway_mid_surge(
    stack: SupervisedStack, platform: Platform, validations: int
) -> Callable[[], Awaitable[None]]:
    """SIGKILL the gateway once half the surge is answered; the platform redelivers."""

    async def fault() -> None:
        await after_accepted(platform, validations // 2)
        pid = await asyncio.to_thread(stack.kill, "gateway")
        print(f"  gateway SIGKILLed mid-surge, back as pid {pid}", flush=True)

    return fault


def hold_for(
    stack: SupervisedStack, platform: Platform, service: str, seconds: float, validations: int
) -> Callable[[], Awaitable[None]]:
    """Stop `service` a quarter into the surge, keep it down `seconds`, start it again."""

    async def fault() -> None:
        await after_accepted(platform, validations // 4)
        await asyncio.to_thread(stack.hold, service)
        print(f"  {service} stopped for {seconds:.0f} s", flush=True)
        await asyncio.sleep(seconds)  # the outage itself, not a synchronisation
        await asyncio.to_thread(stack.release, service)
        print(f"  {service} started again", flush=True)

    return fault


def smtp_trouble(
    stack: SupervisedStack, platform: Platform, refused: str, hang: float, validations: int
) -> Callable[[], Awaitable[None]]:
    """451 to 20 % of the messages and 550 to `refused` from the start of the surge; from
    half of it, the sink hangs `hang` seconds on each message; then only the 550 is left."""

    async def fault() -> None:
        stack.script_mailsink(temporary_every=5, reject_recipients=[refused])
        print(f"  mail sink: 451 to every 5th message, 550 to {refused}", flush=True)
        await after_accepted(platform, validations // 2)
        stack.script_mailsink(hang_seconds=hang, reject_recipients=[refused])
        print(f"  mail sink: hanging {hang:.0f} s on every message", flush=True)
        await asyncio.sleep(hang)  # the outage itself, not a synchronisation
        stack.script_mailsink(reject_recipients=[refused])
        print("  mail sink: answering again (550 to the refused recipient still)", flush=True)

    return fault
