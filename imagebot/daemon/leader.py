"""Leader election through a ``coordination.k8s.io/v1`` Lease, as client-go does it.

Every replica tries to hold the Lease: create it when absent (POST), take it over when its
holder has not renewed for ``lease_duration`` *as observed by this replica's own clock*
(so clock skew between nodes does not matter), and renew it every ``retry_period`` while
leading. Writes carry the ``resourceVersion`` read before, so of two replicas racing for
the Lease the API server accepts one and answers the other 409.

A leader that cannot renew for ``renew_deadline`` stops leading — cancels its cycles and
starts no new one — while another replica still has to wait until ``lease_duration`` has
passed since the last renewal it saw. ``renew_deadline < lease_duration`` is that margin.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx

from imagebot import logs
from imagebot.clock import Clock, utc_now
from imagebot.errors import ImagebotError

log = logs.get_logger("imagebot.daemon.leader")

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class LeaseError(ImagebotError):
    """The Kubernetes API could not be asked about the Lease."""


@dataclass(frozen=True)
class LeaseSettings:
    api_server: str
    """``https://HOST:PORT`` of the API server."""
    namespace: str
    name: str = "imagebot"
    identity: str = ""
    """This replica's name in the Lease (default: pod name plus a random suffix)."""
    token_file: Path = SERVICE_ACCOUNT / "token"
    """Read before every request: projected service-account tokens are rotated."""
    ca_file: Path = SERVICE_ACCOUNT / "ca.crt"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    @classmethod
    def in_cluster(
        cls,
        env: Mapping[str, str],
        *,
        name: str = "imagebot",
        mount: Path = SERVICE_ACCOUNT,
    ) -> LeaseSettings:
        """Settings from the pod's service-account mount and ``KUBERNETES_SERVICE_*``."""
        host = env.get("KUBERNETES_SERVICE_HOST")
        port = env.get("KUBERNETES_SERVICE_PORT", "443")
        if not host:
            raise LeaseError(
                "--leader-elect and --shards need the Kubernetes API: KUBERNETES_SERVICE_HOST"
                " is not set (not running in a pod?)"
            )
        if ":" in host:
            host = f"[{host}]"  # IPv6 service address
        try:
            namespace = env.get("IMAGEBOT_LEASE_NAMESPACE") or (
                (mount / "namespace").read_text().strip()
            )
        except OSError as exc:
            raise LeaseError(f"{mount / 'namespace'}: cannot read: {exc.strerror}") from None
        identity = f"{env.get('HOSTNAME', 'imagebot')}_{uuid.uuid4().hex[:8]}"
        return cls(
            api_server=f"https://{host}:{port}",
            namespace=namespace,
            name=name,
            identity=identity,
            token_file=mount / "token",
            ca_file=mount / "ca.crt",
        )


def micro_time(when: datetime) -> str:
    """Kubernetes ``MicroTime``: RFC 3339 with microseconds, in UTC."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseClient:
    """GET/POST/PUT of one Lease; maps answers to None (absent), a dict, or a conflict."""

    def __init__(
        self,
        settings: LeaseSettings,
        *,
        timeout: float = 5.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        if http is None:
            try:
                verify = ssl.create_default_context(cafile=str(settings.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise LeaseError(f"{settings.ca_file}: cannot load the cluster CA: {exc}") from None
            http = httpx.AsyncClient(base_url=settings.api_server, verify=verify, timeout=timeout)
        self._http = http
        ns, name = settings.namespace, settings.name
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"
        self.item = f"{self.collection}/{name}"

    def named(self, name: str) -> LeaseClient:
        """A client of another Lease in the same namespace, sharing this one's connections."""
        return LeaseClient(replace(self.settings, name=name), http=self._http)

    async def aclose(self) -> None:
        await self._http.aclose()

    def _headers(self) -> dict[str, str]:
        try:
            token = self.settings.token_file.read_text().strip()
        except OSError as exc:
            raise LeaseError(f"{self.settings.token_file}: cannot read: {exc.strerror}") from None
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def _send(self, method: str, url: str, body: Any = None) -> httpx.Response:
        try:
            return await self._http.request(method, url, json=body, headers=self._headers())
        except httpx.HTTPError as exc:
            raise LeaseError(f"{method} lease {self.settings.name}: {exc!r}") from None

    async def get(self) -> dict[str, Any] | None:
        r = await self._send("GET", self.item)
        if r.status_code == 404:
            return None
        return self._json(r, "GET")

    async def list(self) -> list[dict[str, Any]]:
        """Every Lease in the namespace."""
        items = self._json(await self._send("GET", self.collection), "LIST").get("items")
        return [i for i in items or () if isinstance(i, dict)]

    async def delete(self, name: str) -> None:
        """Delete the Lease ``name``; one already gone is no error."""
        r = await self._send("DELETE", f"{self.collection}/{name}")
        if r.status_code != 404:
            self._json(r, "DELETE")

    async def create(self, lease: dict[str, Any]) -> dict[str, Any] | None:
        """The created Lease, or None when another replica created it first (409)."""
        r = await self._send("POST", self.collection, lease)
        return None if r.status_code == 409 else self._json(r, "POST")

    async def replace(self, lease: dict[str, Any]) -> dict[str, Any] | None:
        """The updated Lease, or None when it changed since it was read (409)."""
        r = await self._send("PUT", self.item, lease)
        return None if r.status_code == 409 else self._json(r, "PUT")

    def _json(self, r: httpx.Response, method: str) -> dict[str, Any]:
        if r.status_code not in (200, 201):
            try:
                message = r.json().get("message", "")
            except ValueError:
                message = r.text[:200]
            raise LeaseError(
                f"{method} lease {self.settings.namespace}/{self.settings.name}:"
                f" HTTP {r.status_code}: {message}"
            )
        try:
            doc = r.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise LeaseError(f"{method} lease {self.settings.name}: answer is not a JSON object")
        return doc


class Elector:
    """Holds the Lease while it can; ``leading`` says whether cycles may run."""

    def __init__(
        self,
        client: LeaseClient,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        now: Clock = utc_now,
        sleep: Callable[[float], Any] = anyio.sleep,
    ) -> None:
        self.client = client
        self.settings = client.settings
        self._monotonic = monotonic
        self._now = now
        self._sleep = sleep
        self.leading = False
        self._renewed: float | None = None  # monotonic time the last successful renew started
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0

    def _spec(self, old: Mapping[str, Any], *, taking_over: bool) -> dict[str, Any]:
        now = micro_time(self._now())
        transitions = int(old.get("leaseTransitions") or 0)
        return {
            "holderIdentity": self.settings.identity,
            "leaseDurationSeconds": round(self.settings.lease_duration),
            "acquireTime": now if taking_over else old.get("acquireTime", now),
            "renewTime": now,
            "leaseTransitions": transitions + 1 if taking_over and old else transitions,
        }

    async def try_acquire_or_renew(self) -> bool:
        """One round: True if this replica holds the Lease afterwards."""
        lease = await self.client.get()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.settings.name, "namespace": self.settings.namespace},
                "spec": self._spec({}, taking_over=True),
            }
            return await self.client.create(body) is not None
        if self.observe(lease):
            return False  # held by another replica that renewed within its duration
        spec: dict[str, Any] = lease.get("spec") or {}
        mine = spec.get("holderIdentity") == self.settings.identity
        lease["spec"] = self._spec(spec, taking_over=not mine)
        return await self.client.replace(lease) is not None

    def observe(self, lease: Mapping[str, Any] | None) -> str:
        """Note ``lease`` as read now; the identity of another replica holding it (renewed
        within its duration as this replica's clock saw it), or "" when it is free or ours."""
        spec: Mapping[str, Any] = (lease or {}).get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, self._monotonic()
        holder = str(spec.get("holderIdentity") or "")
        duration = float(spec.get("leaseDurationSeconds") or self.settings.lease_duration)
        fresh = self._observed_at + duration > self._monotonic()
        return holder if holder != self.settings.identity and fresh else ""

    async def run(self, *, started: Callable[[], None], stopped: Callable[[], None]) -> None:
        """Campaign and renew until cancelled; call ``started``/``stopped`` on changes."""
        while True:
            await self._sleep(await self.step(started=started, stopped=stopped))

    async def step(self, *, started: Callable[[], None], stopped: Callable[[], None]) -> float:
        """One attempt to acquire or renew; the seconds to wait before the next one."""
        s = self.settings
        attempt = self._monotonic()
        # While leading, no attempt may outlast the renew deadline.
        left = self._deadline_left(attempt) if self.leading else s.renew_deadline
        try:
            with anyio.fail_after(max(left, 0.01)):
                ok = await self.try_acquire_or_renew()
        except (LeaseError, TimeoutError) as exc:
            log.warning("lease_attempt_failed", error=str(exc) or "timed out")
            ok = False
        if ok:
            self._renewed = attempt
            if not self.leading:
                self.leading = True
                log.info("leadership_acquired", identity=s.identity, lease=s.name)
                started()
        elif self.leading and self._deadline_left(self._monotonic()) <= 0:
            self.leading = False
            log.error("leadership_lost", identity=s.identity, lease=s.name)
            stopped()
        wait = s.retry_period
        if self.leading and not ok:
            # Wake at the deadline at the latest, to stop in time if renewing still fails.
            wait = min(wait, max(self._deadline_left(self._monotonic()), 0.0))
        return wait

    def _deadline_left(self, at: float) -> float:
        renewed = self._renewed if self._renewed is not None else at
        return self.settings.renew_deadline - (at - renewed)

    async def release(self) -> None:
        """Hand the Lease back on shutdown so another replica takes over at once."""
        if not self.leading:
            return
        self.leading = False
        try:
            lease = await self.client.get()
            spec = (lease or {}).get("spec") or {}
            if lease is None or spec.get("holderIdentity") != self.settings.identity:
                return
            lease["spec"] = {**spec, "holderIdentity": "", "leaseDurationSeconds": 1}
            await self.client.replace(lease)
            log.info("leadership_released", identity=self.settings.identity)
        except LeaseError as exc:
            log.warning("lease_release_failed", error=str(exc))
