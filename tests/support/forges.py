"""GitHub, GitLab and Gitea as local HTTP servers: the pull-request endpoints imagebot calls,
as each forge's public API documentation describes them.

One server speaks one dialect (``kind``): its paths, status codes, JSON shapes, pagination
(``Link`` headers everywhere, GitLab's ``X-Total-Pages``/``X-Next-Page``, Gitea's
``X-Total-Count``) and error bodies (GitHub ``{"message", "errors", "documentation_url"}``,
GitLab ``{"message"}``, Gitea ``{"message", "url"}``). It keeps state — pull requests,
comments, labels, reviewers — reads branches from the real bare git remote, and records
every request so tests assert on outcomes. ``fail`` queues a documented error response.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.support.httpserver import serving

API_PREFIX = {"github": "", "gitlab": "/api/v4", "gitea": "/api/v1"}
GITHUB_DOCS = "https://docs.github.com/rest"
#: GitHub lists paged inside an object (combined status, check runs); total_count stays whole
PAGED_WITHIN = ("statuses", "check_runs")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class Pull:
    number: int
    head: str
    base: str
    title: str
    body: str
    draft: bool = False
    state: str = "open"  # open | closed | locked (GitLab, while merging)
    merged: bool = False
    labels: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    automerge: bool = False


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    times: int


class Reply(Exception):
    """Raised by a route to answer with an error status and a documented body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


class ForgeServer:
    """A forge of one ``kind`` hosting ``project``, whose git data is the bare ``remote``."""

    def __init__(
        self, kind: str, remote: Path, *, project: str = "acme/environments", token: str
    ) -> None:
        self.kind = kind
        self.remote = remote
        self.project = project
        self.token = token
        self.pulls: dict[int, Pull] = {}
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.max_page = 100  # the server's largest page, as the real ones cap per_page
        self.labels = {"imagebot": 7, "deps": 8}  # Gitea: repository labels by id
        self.users = {"alice": 41, "bob": 42}  # GitLab: user ids
        #: commit sha -> {context: "success" | "failure" | "pending"}, rendered per forge
        self.statuses: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- for tests ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{API_PREFIX[self.kind]}"

    @property
    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET" and not r.path.endswith("/graphql")]

    def open_pulls(self) -> list[Pull]:
        return [p for p in self.pulls.values() if p.state == "open"]

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests matching ``method`` and regex ``path``."""
        self.faults.append(Fault(method, re.compile(path), status, body, headers or {}, times))

    def close_by_human(self, number: int) -> None:
        self.pulls[number].state = "closed"

    def merge_by_human(self, number: int) -> None:
        """Fast-forward the base branch to the pull request's head, as a merge button would."""
        pr = self.pulls[number]
        sha = self.branch_sha(pr.head)
        assert sha is not None
        _git(self.remote, "update-ref", f"refs/heads/{pr.base}", sha)
        pr.state, pr.merged = "closed", True

    def branch_sha(self, branch: str) -> str | None:
        """The branch's commit, read from the bare remote's refs (loose, then packed)."""
        loose = self.remote / "refs" / "heads" / branch
        if loose.is_file():
            return loose.read_text().strip()
        packed = self.remote / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, ref = line.partition(" ")
                if ref == f"refs/heads/{branch}":
                    return sha
        return None

    # -- HTTP ---------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[
        int, dict[str, str], Any
    ]:  # fmt: skip
        split = urlsplit(raw_path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        payload = json.loads(body) if body else None
        with self._lock:
            self.requests.append(Recorded(method, split.path, query, payload, headers))
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path.search(split.path):
                    fault.times -= 1
                    return fault.status, fault.headers, fault.body
            try:
                self._authenticate(headers)
                route = self._route(method, split.path)
                status, reply_headers, data = route(query, payload)
            except Reply as reply:
                return reply.status, reply.headers, reply.body
            if isinstance(data, list) and method == "GET":
                return self._paginate(split.path, query, data)
            inner = next((k for k in PAGED_WITHIN if isinstance(data, dict) and k in data), None)
            if inner is not None and method == "GET":
                status, reply_headers, page = self._paginate(split.path, query, data[inner])
                return status, reply_headers, {**data, inner: page}
            return status, reply_headers, data

    def _authenticate(self, headers: dict[str, str]) -> None:
        given = {
            "github": headers.get("authorization", "").removeprefix("Bearer "),
            "gitlab": headers.get("private-token", ""),
            "gitea": headers.get("authorization", "").removeprefix("token "),
        }[self.kind]
        if given != self.token:
            raise Reply(
                401,
                {
                    "github": {"message": "Bad credentials", "documentation_url": GITHUB_DOCS},
                    "gitlab": {"message": "401 Unauthorized"},
                    "gitea": {"message": "user does not exist [uid: 0, name: ]", "url": ""},
                }[self.kind],
            )

    def _paginate(
        self, path: str, query: dict[str, str], items: list[Any]
    ) -> tuple[int, dict[str, str], Any]:
        size_key = "limit" if self.kind == "gitea" else "per_page"
        size = min(int(query.get(size_key, 30)), self.max_page)
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * size : page * size]
        pages = max(1, -(-len(items) // size))
        headers: dict[str, str] = {}

        def link(n: int) -> str:
            q = urlencode({**query, "page": n, size_key: size})
            return f"<{self.url.removesuffix(API_PREFIX[self.kind])}{path}?{q}>"

        rels = []
        if page < pages:
            rels.append(f'{link(page + 1)}; rel="next"')
            rels.append(f'{link(pages)}; rel="last"')
        if rels:
            headers["Link"] = ", ".join(rels)
        if self.kind == "gitlab":
            headers.update(
                {
                    "X-Page": str(page),
                    "X-Per-Page": str(size),
                    "X-Total": str(len(items)),
                    "X-Total-Pages": str(pages),
                    "X-Next-Page": str(page + 1) if page < pages else "",
                }
            )
        if self.kind == "gitea":
            headers["X-Total-Count"] = str(len(items))
        return 200, headers, chunk

    def _route(self, method: str, path: str) -> Callable[[dict[str, str], Any], Any]:
        prefix = API_PREFIX[self.kind]
        if not path.startswith(prefix):
            raise self._not_found()
        rest = path[len(prefix) :]
        for m, pattern, handler in self._routes():
            match = re.fullmatch(pattern, rest)
            if match and m == method:
                groups = {k: unquote(v) for k, v in match.groupdict().items()}
                if groups.get("project", self.project) != self.project:
                    raise self._not_found()
                number = groups.get("n")
                if number is not None and int(number) not in self.pulls:
                    raise self._not_found()
                extra: list[Any] = [int(number)] if number else []
                if "sha" in groups:
                    extra.append(groups["sha"])
                return lambda q, b, h=handler, x=extra: h(q, b, *x)
        raise self._not_found()

    def _routes(self) -> list[tuple[str, str, Callable[..., Any]]]:
        if self.kind == "github":
            r = r"/repos/(?P<project>[^/]+/[^/]+)"
            return [
                ("GET", rf"{r}/pulls", self._gh_list),
                ("POST", rf"{r}/pulls", self._gh_create),
                ("PATCH", rf"{r}/pulls/(?P<n>\d+)", self._gh_edit),
                ("GET", rf"{r}/issues/(?P<n>\d+)/comments", self._comments),
                ("POST", rf"{r}/issues/(?P<n>\d+)/comments", self._comment),
                ("POST", rf"{r}/issues/(?P<n>\d+)/labels", self._gh_labels),
                ("POST", rf"{r}/pulls/(?P<n>\d+)/requested_reviewers", self._reviewers),
                ("GET", rf"{r}/commits/(?P<sha>\w+)/status", self._gh_status),
                ("GET", rf"{r}/commits/(?P<sha>\w+)/check-runs", self._gh_checks),
                ("POST", r"/graphql", self._gh_graphql),
            ]
        if self.kind == "gitlab":
            r = r"/projects/(?P<project>[^/]+)"
            return [
                ("GET", rf"{r}/merge_requests", self._gl_list),
                ("POST", rf"{r}/merge_requests", self._gl_create),
                ("PUT", rf"{r}/merge_requests/(?P<n>\d+)", self._gl_edit),
                ("GET", rf"{r}/merge_requests/(?P<n>\d+)/notes", self._comments),
                ("POST", rf"{r}/merge_requests/(?P<n>\d+)/notes", self._comment),
                ("PUT", rf"{r}/merge_requests/(?P<n>\d+)/merge", self._gl_merge),
                ("GET", r"/users", self._gl_users),
                ("GET", rf"{r}/repository/commits/(?P<sha>\w+)/statuses", self._statuses),
            ]
        r = r"/repos/(?P<project>[^/]+/[^/]+)"
        return [
            ("GET", rf"{r}/pulls", self._gt_list),
            ("POST", rf"{r}/pulls", self._gt_create),
            ("PATCH", rf"{r}/pulls/(?P<n>\d+)", self._gt_edit),
            ("GET", rf"{r}/issues/(?P<n>\d+)/comments", self._comments),
            ("POST", rf"{r}/issues/(?P<n>\d+)/comments", self._comment),
            ("GET", rf"{r}/labels", self._gt_repo_labels),
            ("POST", rf"{r}/issues/(?P<n>\d+)/labels", self._gt_labels),
            ("POST", rf"{r}/pulls/(?P<n>\d+)/requested_reviewers", self._reviewers),
            ("POST", rf"{r}/pulls/(?P<n>\d+)/merge", self._gt_merge),
            ("GET", rf"{r}/commits/(?P<sha>\w+)/statuses", self._statuses),
        ]

    def _not_found(self) -> Reply:
        return Reply(
            404,
            {
                "github": {"message": "Not Found", "documentation_url": GITHUB_DOCS},
                "gitlab": {"message": "404 Project Not Found"},
                "gitea": {"errors": None, "message": "The target couldn't be found.", "url": ""},
            }[self.kind],
        )

    # -- shared state changes -------------------------------------------------------------

    def _new_pull(self, head: str, base: str, title: str, body: str, draft: bool) -> Pull:
        pr = Pull(len(self.pulls) + 1, head, base, title, body, draft=draft)
        self.pulls[pr.number] = pr
        return pr

    def _existing(self, head: str, base: str) -> Pull | None:
        return next((p for p in self.open_pulls() if (p.head, p.base) == (head, base)), None)

    def _comments(
        self, query: dict[str, str], body: Any, n: int
    ) -> tuple[int, dict[str, str], Any]:
        pr = self.pulls[n]
        return 200, {}, [
            {"id": i + 1, "body": c, **({"system": False} if self.kind == "gitlab" else {})}
            for i, c in enumerate(pr.comments)
        ]  # fmt: skip

    def _comment(self, query: dict[str, str], body: Any, n: int) -> tuple[int, dict[str, str], Any]:
        self.pulls[n].comments.append(body["body"])
        return 201, {}, {"id": len(self.pulls[n].comments), "body": body["body"]}

    def _reviewers(
        self, query: dict[str, str], body: Any, n: int
    ) -> tuple[int, dict[str, str], Any]:
        self.pulls[n].reviewers.extend(body["reviewers"])
        return 201, {}, self._json(self.pulls[n])

    def _statuses(
        self, query: dict[str, str], body: Any, sha: str
    ) -> tuple[int, dict[str, str], Any]:
        if self.kind == "gitlab":
            words = {"success": "success", "failure": "failed", "pending": "running"}
            return 200, {}, [
                {"name": c, "status": words[s], "target_url": f"https://ci/{c}"}
                for c, s in self.statuses.get(sha, {}).items()
            ]  # fmt: skip
        return 200, {}, [
            {"context": c, "status": s, "target_url": f"https://ci/{c}", "description": None}
            for c, s in self.statuses.get(sha, {}).items()
        ]  # fmt: skip

    # -- GitHub -------------------------------------------------------------------------

    def _gh_list(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        state = query.get("state", "open")
        head = query.get("head")
        owner = self.project.split("/")[0]
        out = [
            self._json(p)
            for p in self.pulls.values()
            if state in ("all", p.state)
            and (head is None or f"{owner}:{p.head}" == head)
            and query.get("base", p.base) == p.base
        ]
        return 200, {}, out

    def _gh_create(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        if self.branch_sha(body["head"]) is None:
            raise Reply(422, self._gh_invalid([
                {"resource": "PullRequest", "field": "head", "code": "invalid"}
            ]))  # fmt: skip
        if self._existing(body["head"], body["base"]):
            owner = self.project.split("/")[0]
            raise Reply(422, self._gh_invalid([{
                "resource": "PullRequest", "code": "custom",
                "message": f"A pull request already exists for {owner}:{body['head']}.",
            }]))  # fmt: skip
        pr = self._new_pull(
            body["head"],
            body["base"],
            body["title"],
            body.get("body") or "",
            body.get("draft", False),
        )
        return 201, {}, self._json(pr)

    def _gh_invalid(self, errors: list[dict[str, str]]) -> dict[str, Any]:
        return {"message": "Validation Failed", "errors": errors, "documentation_url": GITHUB_DOCS}

    def _gh_edit(self, query: dict[str, str], body: Any, n: int) -> tuple[int, dict[str, str], Any]:
        pr = self.pulls[n]
        pr.title = body.get("title", pr.title)
        pr.body = body.get("body", pr.body)
        pr.state = body.get("state", pr.state)
        return 200, {}, self._json(pr)

    def _gh_labels(
        self, query: dict[str, str], body: Any, n: int
    ) -> tuple[int, dict[str, str], Any]:
        self.pulls[n].labels.extend(body["labels"])
        return 200, {}, [{"name": name} for name in self.pulls[n].labels]

    def _gh_status(
        self, query: dict[str, str], body: Any, sha: str
    ) -> tuple[int, dict[str, str], Any]:
        # Combined status: legacy commit statuses only; GitHub Actions report check runs.
        statuses = [
            {"context": c, "state": s, "target_url": f"https://ci/{c}", "description": None}
            for c, s in self.statuses.get(sha, {}).items()
            if not c.startswith("actions/")
        ]
        states = {s["state"] for s in statuses}
        overall = (
            "failure"
            if "failure" in states
            else "pending"
            if "pending" in states or not statuses
            else "success"
        )
        return (
            200,
            {},
            {"state": overall, "sha": sha, "statuses": statuses, "total_count": len(statuses)},
        )

    def _gh_checks(
        self, query: dict[str, str], body: Any, sha: str
    ) -> tuple[int, dict[str, str], Any]:
        runs = [
            {"name": c, "html_url": f"https://ci/{c}",
             **({"status": "in_progress", "conclusion": None} if s == "pending"
                else {"status": "completed", "conclusion": s})}
            for c, s in self.statuses.get(sha, {}).items()
            if c.startswith("actions/")
        ]  # fmt: skip
        return 200, {}, {"total_count": len(runs), "check_runs": runs}

    def _gh_graphql(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        node = body.get("variables", {}).get("id", "")
        found = [p for p in self.pulls.values() if f"PR_{p.number}" == node]
        if "enablePullRequestAutoMerge" not in body.get("query", "") or not found:
            return 200, {}, {"data": None, "errors": [{"message": f"Could not resolve {node}"}]}
        found[0].automerge = True
        return 200, {}, {"data": {"enablePullRequestAutoMerge": {"pullRequest": {
            "number": found[0].number}}}}  # fmt: skip

    # -- GitLab -------------------------------------------------------------------------

    def _gl_list(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        state = query.get("state", "all")
        out = [
            self._json(p)
            for p in self.pulls.values()
            if state in ("all", self._gl_state(p))
            and query.get("source_branch", p.head) == p.head
            and query.get("target_branch", p.base) == p.base
        ]
        return 200, {}, out

    def _gl_state(self, p: Pull) -> str:
        if p.state == "locked":  # GitLab only: a merge is being carried out
            return "locked"
        return "opened" if p.state == "open" else ("merged" if p.merged else "closed")

    def _gl_create(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        head, base = body["source_branch"], body["target_branch"]
        if self.branch_sha(head) is None:
            raise Reply(400, {"message": {"source_branch": ["is invalid"]}})
        existing = self._existing(head, base)
        if existing:
            message = "Another open merge request already exists for this source branch"
            raise Reply(409, {"message": [f"{message}: !{existing.number}"]})
        title = body["title"]
        pr = self._new_pull(
            head, base, title, body.get("description") or "", title.startswith("Draft: ")
        )
        return 201, {}, self._json(pr)

    def _gl_edit(self, query: dict[str, str], body: Any, n: int) -> tuple[int, dict[str, str], Any]:
        pr = self.pulls[n]
        pr.title = body.get("title", pr.title)
        pr.body = body.get("description", pr.body)
        if body.get("state_event") == "close":
            pr.state = "closed"
        if "add_labels" in body:
            pr.labels.extend(x for x in body["add_labels"].split(",") if x)
        if "reviewer_ids" in body:  # replaces the reviewers (an empty list removes them all)
            by_id = {v: k for k, v in self.users.items()}
            pr.reviewers = [by_id[i] for i in body["reviewer_ids"]]
        return 200, {}, self._json(pr)

    def _gl_merge(
        self, query: dict[str, str], body: Any, n: int
    ) -> tuple[int, dict[str, str], Any]:
        pr = self.pulls[n]
        if body.get("auto_merge") or body.get("merge_when_pipeline_succeeds"):
            pr.automerge = True
            return 200, {}, self._json(pr)
        raise Reply(405, {"message": "405 Method Not Allowed"})

    def _gl_users(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        name = query.get("username", "")
        return 200, {}, [{"id": self.users[name], "username": name}] if name in self.users else []

    # -- Gitea --------------------------------------------------------------------------

    def _gt_list(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        state = query.get("state", "open")
        return 200, {}, [self._json(p) for p in self.pulls.values() if state in ("all", p.state)]

    def _gt_create(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        head, base = body["head"], body["base"]
        if self.branch_sha(head) is None:
            raise Reply(
                404, {"errors": None, "message": "The target couldn't be found.", "url": ""}
            )
        existing = self._existing(head, base)
        if existing:
            raise Reply(409, {"message": (
                f"pull request already exists for these targets [id: {existing.number},"
                f" issue_id: {existing.number}, head_repo_id: 1, base_repo_id: 1,"
                f" head_branch: {head}, base_branch: {base}]"), "url": ""})  # fmt: skip
        title = body["title"]
        pr = self._new_pull(head, base, title, body.get("body") or "", title.startswith("WIP: "))
        return 201, {}, self._json(pr)

    def _gt_edit(self, query: dict[str, str], body: Any, n: int) -> tuple[int, dict[str, str], Any]:
        pr = self.pulls[n]
        pr.title = body.get("title", pr.title)
        pr.body = body.get("body", pr.body)
        pr.state = body.get("state", pr.state)
        return 201, {}, self._json(pr)

    def _gt_repo_labels(self, query: dict[str, str], body: Any) -> tuple[int, dict[str, str], Any]:
        return 200, {}, [{"id": i, "name": n} for n, i in self.labels.items()]

    def _gt_labels(
        self, query: dict[str, str], body: Any, n: int
    ) -> tuple[int, dict[str, str], Any]:
        by_id = {v: k for k, v in self.labels.items()}
        unknown = [i for i in body["labels"] if i not in by_id]
        if unknown:
            raise Reply(422, {"message": f"label {unknown[0]} does not exist", "url": ""})
        self.pulls[n].labels.extend(by_id[i] for i in body["labels"])
        return 200, {}, [{"id": self.labels[x], "name": x} for x in self.pulls[n].labels]

    def _gt_merge(
        self, query: dict[str, str], body: Any, n: int
    ) -> tuple[int, dict[str, str], Any]:
        if body.get("merge_when_checks_succeed"):
            self.pulls[n].automerge = True
            return 200, {}, None
        raise Reply(405, {"message": "merge is not allowed", "url": ""})

    # -- JSON shapes --------------------------------------------------------------------

    def _json(self, p: Pull) -> dict[str, Any]:
        web = self.url.removesuffix(API_PREFIX[self.kind])
        sha = self.branch_sha(p.head)
        if self.kind == "github":
            return {
                "number": p.number, "node_id": f"PR_{p.number}",
                "html_url": f"{web}/{self.project}/pull/{p.number}",
                "title": p.title, "body": p.body, "state": p.state, "draft": p.draft,
                "merged_at": "2025-01-01T00:00:00Z" if p.merged else None,
                "head": {"ref": p.head, "sha": sha}, "base": {"ref": p.base},
                "labels": [{"name": x} for x in p.labels],
                "requested_reviewers": [{"login": x} for x in p.reviewers],
            }  # fmt: skip
        if self.kind == "gitlab":
            return {
                "id": 1000 + p.number, "iid": p.number,
                "web_url": f"{web}/{self.project}/-/merge_requests/{p.number}",
                "title": p.title, "description": p.body, "state": self._gl_state(p),
                "merged_at": "2025-01-01T00:00:00Z" if p.merged else None,
                "draft": p.draft, "source_branch": p.head, "target_branch": p.base,
                "sha": sha, "labels": list(p.labels),
                "reviewers": [{"id": self.users[x], "username": x} for x in p.reviewers],
                "merge_when_pipeline_succeeds": p.automerge,
            }  # fmt: skip
        return {
            "id": 2000 + p.number, "number": p.number,
            "html_url": f"{web}/{self.project}/pulls/{p.number}",
            "title": p.title, "body": p.body, "state": p.state, "merged": p.merged,
            "merged_at": "2025-01-01T00:00:00Z" if p.merged else None,
            "draft": p.draft, "head": {"ref": p.head, "sha": sha}, "base": {"ref": p.base},
            "labels": [{"id": self.labels[x], "name": x} for x in p.labels],
        }  # fmt: skip


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


class _Handler(BaseHTTPRequestHandler):
    forge: ForgeServer

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, reply_headers, data = self.forge.handle(self.command, self.path, headers, body)
        raw = b"" if data is None else (
            data.encode() if isinstance(data, str) else json.dumps(data).encode()
        )  # fmt: skip
        self.send_response(status)
        content_type = "text/plain" if isinstance(data, str) else "application/json"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        for k, v in reply_headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def run_forge(
    kind: str, remote: Path, *, token: str, project: str = "acme/environments"
) -> Iterator[ForgeServer]:
    """A forge of ``kind`` on a free loopback port, serving until the block ends."""
    forge = ForgeServer(kind, remote, project=project, token=token)
    handler = type("Handler", (_Handler,), {"forge": forge})
    with serving(handler) as server:
        forge._server = server
        yield forge
