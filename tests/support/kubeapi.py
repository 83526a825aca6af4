"""A local Kubernetes API server for the one resource imagebot uses: coordination.k8s.io/v1
Leases, over TLS, with bearer-token auth.

Faithful to the API's semantics for GET/POST/PUT/DELETE of a namespaced Lease and GET
(list) of the namespace's Leases: 404 with a
``Status`` body when absent, 409 ``AlreadyExists`` on a second create, 409 ``Conflict``
when a PUT carries a stale ``metadata.resourceVersion``, 401 without the right token; every
write bumps ``resourceVersion``. ``fail`` makes every request answer 500 (an API server
that cannot be reached in time), to test a leader that cannot renew.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.certs import CertificateAuthority

_ITEM = re.compile(r"^/apis/coordination\.k8s\.io/v1/namespaces/([^/]+)/leases/([^/?]+)$")
_COLLECTION = re.compile(r"^/apis/coordination\.k8s\.io/v1/namespaces/([^/]+)/leases$")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@dataclass
class KubeAPI:
    url: str
    token: str
    ca: Path
    leases: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    fail: bool = False
    sneak: dict[str, Any] | None = None
    """A spec another client writes just before the next PUT is handled (a lost race)."""
    _version: int = 100
    lock: threading.Lock = field(default_factory=threading.Lock)

    def holder(self, namespace: str, name: str) -> str | None:
        with self.lock:
            lease = self.leases.get((namespace, name))
            return None if lease is None else lease["spec"].get("holderIdentity")

    def put_lease(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        """Create or overwrite a Lease as another client would."""
        with self.lock:
            self._put(namespace, name, spec)

    def _put(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        self._version += 1
        self.leases[(namespace, name)] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "resourceVersion": str(self._version),
            },
            "spec": dict(spec),
        }

    def handle(
        self, method: str, path: str, token: str, body: dict[str, Any] | None
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if token != f"Bearer {self.token}":
                return 401, _status(401, "Unauthorized", "Unauthorized")
            if self.fail:
                return 500, _status(500, "InternalError", "etcdserver: request timed out")
            if (m := _ITEM.match(path)) and method in ("GET", "PUT", "DELETE"):
                key = (m[1], m[2])
                current = self.leases.get(key)
                if current is None:
                    msg = f'leases.coordination.k8s.io "{m[2]}" not found'
                    return 404, _status(404, "NotFound", msg)
                if method == "GET":
                    return 200, json.loads(json.dumps(current))
                if method == "DELETE":
                    del self.leases[key]
                    done = {**_status(200, "", ""), "status": "Success"}
                    return 200, {**done, "details": {"name": m[2], "kind": "leases"}}
                assert body is not None
                if self.sneak is not None:
                    self._put(m[1], m[2], self.sneak)
                    self.sneak = None
                    current = self.leases[key]
                sent = (body.get("metadata") or {}).get("resourceVersion")
                if sent != current["metadata"]["resourceVersion"]:
                    return 409, _status(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on leases.coordination.k8s.io "{m[2]}":'
                        " the object has been modified; please apply your changes to the latest"
                        " version and try again",
                    )
                self._version += 1
                updated = {**body, "metadata": {**current["metadata"]}}
                updated["metadata"]["resourceVersion"] = str(self._version)
                self.leases[key] = updated
                return 200, json.loads(json.dumps(updated))
            if (m := _COLLECTION.match(path)) and method == "GET":
                items = [v for (ns, _), v in sorted(self.leases.items()) if ns == m[1]]
                return 200, {
                    "kind": "LeaseList",
                    "apiVersion": "coordination.k8s.io/v1",
                    "metadata": {"resourceVersion": str(self._version)},
                    "items": json.loads(json.dumps(items)),
                }
            if (m := _COLLECTION.match(path)) and method == "POST":
                assert body is not None
                name = body["metadata"]["name"]
                key = (m[1], name)
                if key in self.leases:
                    msg = f'leases.coordination.k8s.io "{name}" already exists'
                    return 409, _status(409, "AlreadyExists", msg)
                self._version += 1
                created = {
                    **body,
                    "metadata": {
                        **body["metadata"],
                        "namespace": m[1],
                        "resourceVersion": str(self._version),
                    },
                }
                self.leases[key] = created
                return 201, json.loads(json.dumps(created))
            return 404, _status(404, "NotFound", "the server could not find the requested resource")


def _handler(api: KubeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            code, doc = api.handle(
                self.command, self.path, self.headers.get("authorization", ""), body
            )
            api.requests.append((self.command, self.path, code))
            data = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = _serve

    return Handler


@contextmanager
def run_kube_api(directory: Path, *, token: str = "sa-token-for-tests") -> Iterator[KubeAPI]:
    """Serve the Lease API on a free loopback port over TLS signed by a throw-away CA."""
    ca = CertificateAuthority(directory / "ca")
    pair = ca.issue("apiserver", server=True)
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    api = KubeAPI(url=f"https://127.0.0.1:{server.server_address[1]}", token=token, ca=ca.ca)
    server.RequestHandlerClass = _handler(api)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert, pair.key)
    # The handshake happens in each connection's thread: a slow client never blocks accept.
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    server.daemon_threads = True
    # A client killed mid-handshake (a SIGKILLed replica) is its own business, not an error.
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def service_account(directory: Path, api: KubeAPI, *, namespace: str = "imagebot") -> Path:
    """A service-account mount (token, ca.crt, namespace) as kubelet writes it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "token").write_text(api.token)
    (directory / "ca.crt").write_bytes(api.ca.read_bytes())
    (directory / "namespace").write_text(namespace)
    return directory
