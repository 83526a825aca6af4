"""Work shared across replicas: environments hashed into shards, each owned through a Lease.

``serve --shards N`` puts every environment in shard ``sha256(name) mod N`` — stable across
replicas, versions and restarts — and owns shard ``i`` through the Lease
``<release>-shard-<i>``, held, renewed, fenced and handed back exactly like the single
leader Lease (:class:`~imagebot.daemon.leader.Elector`, one per shard). Each replica also
renews a membership Lease ``<release>-replica-<id>``, so replicas that hold no shard yet
are counted.

Every ``retry_period`` a replica lists the Leases once and then, with ``live`` the number of
replicas whose membership is fresh:

- renews the shards it holds (one that cannot be renewed within ``renew_deadline`` is
  dropped: its cycles are cancelled before the Lease can pass to another replica);
- takes free or expired shards while it holds fewer than ⌈N / live⌉ + 1;
- gives one shard back when it holds more than ⌈N / live⌉ while another live replica holds
  fewer than ⌊N / live⌋ (and gives back at once everything over the cap) — but only a shard
  with no cycle running, so two replicas never write for one environment at once;
- deletes membership Leases that expired (replicas that are gone).

A replica that dies stops renewing; its shards become free ``lease_duration`` after another
replica last saw them renewed, and are taken on that replica's next round.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

from imagebot import logs
from imagebot.daemon.leader import Elector, LeaseClient, LeaseError
from imagebot.daemon.scheduler import Dispatcher

log = logs.get_logger("imagebot.daemon.shards")

MEMBER = "-replica-"


def shard_of(environment: str, shards: int) -> int:
    """The shard of ``environment``: the same on every replica and every version."""
    return int.from_bytes(hashlib.sha256(environment.encode()).digest()[:8], "big") % shards


def _lease_name(text: str) -> str:
    """``text`` as a Kubernetes object name (lower-case alphanumerics and '-')."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40] or "replica"


class Shards:
    """The shards this replica owns, kept by one Elector per shard Lease."""

    def __init__(
        self,
        client: LeaseClient,
        count: int,
        *,
        environments: Callable[[], Iterable[str]],
        dispatcher: Dispatcher,
        cancel: Callable[[list[str]], None],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.settings = s = client.settings
        self.count = count
        self._monotonic = monotonic
        self._environments = environments
        self._dispatcher = dispatcher
        self._cancel = cancel
        self.electors = [
            Elector(client.named(f"{s.name}-shard-{i}"), monotonic=monotonic) for i in range(count)
        ]
        self.member = Elector(
            client.named(f"{s.name}{MEMBER}{_lease_name(s.identity)}"), monotonic=monotonic
        )
        self._peers: dict[str, Elector] = {}  # observers of other replicas' membership Leases

    @property
    def owned(self) -> list[int]:
        return [i for i, e in enumerate(self.electors) if e.leading]

    def owns(self, environment: str) -> bool:
        return self.electors[shard_of(environment, self.count)].leading

    def _in(self, shard: int) -> list[str]:
        return [e for e in self._environments() if shard_of(e, self.count) == shard]

    def _gained(self, shard: int) -> None:
        self._dispatcher.request(self._in(shard), "startup")

    def _lost(self, shard: int) -> None:
        """Stop writing for ``shard`` now: its Lease may pass to another replica."""
        envs = self._in(shard)
        self._dispatcher.forget(envs)
        self._cancel(envs)

    def _may_release(self, shard: int) -> bool:
        return not set(self._in(shard)) & self._dispatcher.running

    async def round(self) -> float:
        """List, renew, take and give back as the module docstring says; the seconds until
        the next round."""
        waits = [self.settings.retry_period]
        for i in self.owned:  # renew first: a held shard must never wait behind the others
            waits.append(await self._step(i))
        await self.member.step(started=_nothing, stopped=_nothing)
        try:
            leases = {str(x["metadata"]["name"]): x for x in await self.client.list()}
        except (LeaseError, KeyError, TypeError) as exc:
            log.warning("lease_list_failed", error=str(exc))
            leases = None
        if leases is None:
            return min(waits)
        live, holders = await self._census(leases)
        mine = self.owned
        cap = math.ceil(self.count / live) + 1
        starved = any(held < self.count // live for held in holders.values())
        over = len(mine) - cap if len(mine) > cap else int(starved and len(mine) > cap - 1)
        released = set()
        for i in reversed(mine):
            if over <= 0:
                break
            if self._may_release(i):
                over -= 1
                released.add(i)
                self._lost(i)  # before the Lease is handed back: no cycle may start after
                await self.electors[i].release()
                log.info("shard_given_back", shard=i, live_replicas=live)
        for i, e in enumerate(self.electors):
            if len(self.owned) >= cap:
                break
            free = not e.observe(leases.get(e.settings.name))
            if free and not e.leading and i not in released:
                waits.append(await self._step(i))
        return min(waits)

    async def _census(self, leases: dict[str, dict[str, object]]) -> tuple[int, Counter[str]]:
        """Live replicas (this one included) and how many shards each other one holds."""
        s = self.settings
        prefix = f"{s.name}{MEMBER}"
        peers: set[str] = set()
        for name, lease in leases.items():
            if not name.startswith(prefix) or name == self.member.settings.name:
                continue
            observer = self._peers.setdefault(
                name, Elector(self.client.named(name), monotonic=self._monotonic)
            )
            if holder := observer.observe(lease):
                peers.add(holder)
            else:  # a replica that is gone: its membership expired (or it released it)
                del self._peers[name]
                try:
                    await self.client.delete(name)
                except LeaseError as exc:
                    log.warning("lease_delete_failed", lease=name, error=str(exc))
        holders = Counter({p: 0 for p in peers})
        for e in self.electors:
            if not e.leading and (holder := e.observe(leases.get(e.settings.name))) in peers:
                holders[holder] += 1
        return len(peers) + 1, holders

    async def _step(self, i: int) -> float:
        return await self.electors[i].step(
            started=lambda: self._gained(i), stopped=lambda: self._lost(i)
        )

    async def run(self, *, sleep: Callable[[float], Awaitable[object]]) -> None:
        """Rounds until cancelled."""
        while True:
            await sleep(await self.round())

    async def release(self) -> None:
        """Hand every shard and the membership back (on shutdown, cycles finished)."""
        for e in self.electors:
            await e.release()
        await self.member.release()


def _nothing() -> None:
    pass
