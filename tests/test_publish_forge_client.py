"""The forge clients on their own, against the local forge servers: pagination, rate
limits, unreachable servers, and the source links of pull request bodies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from imagebot.errors import ForgeError
from imagebot.forge import CommitStatus, Forge, PullRequest, connect_forge
from imagebot.publisher.proposal import compare_url
from tests.support.clock import FakeClock
from tests.support.forges import ForgeServer, Pull, run_forge
from tests.support.gitenv import make_remote
from tests.support.registry import free_port

TOKEN = "client-t0ken"


@pytest.fixture(params=["github", "gitlab", "gitea"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ForgeServer]:
    remote = make_remote(tmp_path, {"a.yaml": b"a: 1\n"})
    with run_forge(request.param, remote, token=TOKEN) as forge:
        yield forge


def _call(server_kind: str, url: str, clock: FakeClock, action: Any) -> Any:
    async def run() -> Any:
        async with httpx.AsyncClient() as client:
            forge = connect_forge(
                server_kind, client=client, api_url=url, project="acme/environments",
                token=TOKEN, sleep=clock.sleep, clock=clock.now,
            )  # fmt: skip
            return await action(forge)

    return anyio.run(run)


@pytest.mark.parametrize(
    ("kind", "api"),
    [
        ("github", "https://api.github.com/repos/acme/environments/pulls"),
        ("gitlab", "https://gitlab.com/api/v4/projects/acme%2Fenvironments/merge_requests"),
        ("gitea", "https://gitea.com/api/v1/repos/acme/environments/pulls"),
    ],
)
def test_forge_without_url_calls_its_public_api(kind: str, api: str) -> None:
    """A policy that gives no forge.url reaches the forge type's public API."""
    sent: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url.copy_with(query=None)))
        return httpx.Response(200, json=[])

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            forge = connect_forge(
                kind, client=client, api_url=None, project="acme/environments",
                token=TOKEN, sleep=FakeClock().sleep, clock=FakeClock().now,
            )  # fmt: skip
            assert await forge.find_open(head="imagebot/dev", base="main") is None

    anyio.run(run)
    assert sent == [api]


def test_closed_pull_requests_are_read_across_pages(server: ForgeServer) -> None:
    """Every closed pull request of a branch is found when the forge pages two at a time,
    and the merged one is told apart."""
    for n in range(1, 6):
        server.pulls[n] = Pull(n, "imagebot/dev", "main", f"t{n}", "", state="closed")
    server.pulls[6] = Pull(6, "other", "main", "t6", "", state="closed")
    server.pulls[3].merged = True
    server.max_page = 2

    async def closed(forge: Forge) -> list[PullRequest]:
        return await forge.closed(head="imagebot/dev", base="main")

    found = _call(server.kind, server.url, FakeClock(), closed)
    assert sorted(pr.number for pr in found) == [1, 2, 3, 4, 5]
    assert {pr.number for pr in found if pr.state == "merged"} == {3}
    pages = [r for r in server.requests if r.method == "GET"]
    assert len(pages) >= 3


def test_github_primary_rate_limit_waits_until_reset(tmp_path: Path) -> None:
    """GitHub's primary limit (403, x-ratelimit-remaining 0) is waited out until
    x-ratelimit-reset, then the request succeeds."""
    clock = FakeClock()
    remote = make_remote(tmp_path, {"a.yaml": b"a: 1\n"})
    with run_forge("github", remote, token=TOKEN) as server:
        reset = int(clock.now().timestamp()) + 42
        server.fail(
            "GET", r"/pulls$", 403, {"message": "API rate limit exceeded for user ID 1."},
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        )  # fmt: skip

        async def find(forge: Forge) -> PullRequest | None:
            return await forge.find_open(head="imagebot/dev", base="main")

        assert _call("github", server.url, clock, find) is None
    assert clock.sleeps == [42.0]


def test_github_secondary_limit_without_retry_after_waits_a_minute(tmp_path: Path) -> None:
    """A secondary rate limit that names no wait is retried after one minute, as GitHub's
    documentation asks."""
    clock = FakeClock()
    remote = make_remote(tmp_path, {"a.yaml": b"a: 1\n"})
    with run_forge("github", remote, token=TOKEN) as server:
        server.fail("GET", r"/pulls$", 403, {
            "message": "You have exceeded a secondary rate limit and have been temporarily"
            " blocked from content creation.",
            "documentation_url": "https://docs.github.com/rest",
        })  # fmt: skip

        async def find(forge: Forge) -> PullRequest | None:
            return await forge.find_open(head="imagebot/dev", base="main")

        assert _call("github", server.url, clock, find) is None
    assert clock.sleeps == [60.0]


def test_forbidden_without_rate_limit_headers_is_not_retried(server: ForgeServer) -> None:
    """A plain 403 is an error at once, with the forge's message; nothing is slept."""
    clock = FakeClock()
    server.fail("GET", r"/(pulls|merge_requests)$", 403, {"message": "Must have admin rights"})

    async def find(forge: Forge) -> PullRequest | None:
        return await forge.find_open(head="imagebot/dev", base="main")

    with pytest.raises(ForgeError) as info:
        _call(server.kind, server.url, clock, find)
    assert info.value.status == 403 and clock.sleeps == []
    assert str(info.value).startswith(f"{server.kind} acme/environments: find open ")
    assert "Must have admin rights" in str(info.value)


def test_an_answer_that_is_not_json_is_a_forge_error(server: ForgeServer) -> None:
    """A 200 carrying an HTML page (a proxy's sign-in page, say) is a ForgeError, not a
    JSON decoding exception."""
    server.fail("GET", r"/(pulls|merge_requests)$", 200, "<html>Sign in</html>")

    async def find(forge: Forge) -> PullRequest | None:
        return await forge.find_open(head="imagebot/dev", base="main")

    with pytest.raises(ForgeError) as info:
        _call(server.kind, server.url, FakeClock(), find)
    assert "the answer is not JSON (text/plain)" in str(info.value)


def test_unreachable_forge_is_a_forge_error() -> None:
    """A connection refused becomes ForgeError naming forge, project and action; no httpx
    exception leaks out."""

    async def find(forge: Forge) -> PullRequest | None:
        return await forge.find_open(head="imagebot/dev", base="main")

    with pytest.raises(ForgeError) as info:
        _call("gitea", f"http://127.0.0.1:{free_port()}/api/v1", FakeClock(), find)
    message = str(info.value)
    assert message.startswith("gitea acme/environments: find open pull request: cannot reach")
    assert TOKEN not in message


@pytest.mark.parametrize(
    ("source", "old", "new", "url"),
    [
        ("https://github.com/acme/app", "a1", "b2", "https://github.com/acme/app/compare/a1...b2"),
        ("git@gitlab.com:acme/app.git", "a1", "b2", "https://gitlab.com/acme/app/-/compare/a1...b2"),
        ("https://codeberg.org/acme/app.git/", None, "b2", "https://codeberg.org/acme/app/commit/b2"),
        ("git+ssh://git@gitlab.example.com/g/app", "a", "b", "https://gitlab.example.com/g/app/-/compare/a...b"),
        ("https://github.com/acme/app", "b2", "b2", "https://github.com/acme/app/commit/b2"),
    ],
)  # fmt: skip
def test_compare_url_forms(source: str, old: str | None, new: str, url: str) -> None:
    """Source annotations in https, scp-like and ssh forms give the forge's compare link."""
    assert compare_url(source, old, new) == url


def test_github_statuses_and_check_runs_are_read_across_pages(tmp_path: Path) -> None:
    """GitHub pages the statuses of a combined status and the check runs of a commit inside
    an object (Link headers); every one of them is read, not only the first page."""
    sha = "b" * 40
    remote = make_remote(tmp_path, {"a.yaml": b"a: 1\n"})
    with run_forge("github", remote, token=TOKEN) as server:
        server.max_page = 2
        server.statuses[sha] = {f"ci/{n}": "success" for n in range(5)}
        server.statuses[sha].update({f"actions/{n}": "failure" for n in range(5)})

        async def read(forge: Forge) -> list[CommitStatus]:
            return await forge.commit_statuses(sha)

        got = {s.context: s.state for s in _call("github", server.url, FakeClock(), read)}
    assert got == {
        **{f"ci/{n}": "success" for n in range(5)},
        **{f"actions/{n}": "failure" for n in range(5)},
    }
    pages = [r.path for r in server.requests if r.method == "GET"]
    assert pages.count(f"/repos/acme/environments/commits/{sha}/check-runs") == 3
    assert pages.count(f"/repos/acme/environments/commits/{sha}/status") == 3


def test_gitlab_merge_request_being_merged_is_not_read_as_closed(tmp_path: Path) -> None:
    """A GitLab merge request in the documented ``locked`` state (a merge in progress) is not
    among the closed ones, so it is never taken for a proposal a human declined."""
    remote = make_remote(tmp_path, {"a.yaml": b"a: 1\n"})
    with run_forge("gitlab", remote, token=TOKEN) as server:
        server.pulls[1] = Pull(1, "imagebot/dev", "main", "t1", "", state="closed")
        server.pulls[2] = Pull(2, "imagebot/dev", "main", "t2", "", state="locked")

        async def closed(forge: Forge) -> list[PullRequest]:
            return await forge.closed(head="imagebot/dev", base="main")

        found = _call("gitlab", server.url, FakeClock(), closed)
    assert [(pr.number, pr.state) for pr in found] == [(1, "closed")]
