"""Warm cycles do less: no digest fetched that nothing shows, no selection re-run for a
repository whose tag list and rule did not change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from imagebot.cache import Cache
from imagebot.config import load_policies
from imagebot.core.plan import ImageScan
from imagebot.core.selection import SelectionRule, TagInfo
from imagebot.core.selectmemo import SelectionMemo
from imagebot.engine import run_cycle
from imagebot.registry.client import RegistryClient
from tests.support.cli import run_cli
from tests.support.gitenv import DEPLOYMENT, make_remote
from tests.support.registry import Registry, push_image

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def requests(registry: Registry, method: str, kind: str) -> int:
    """How many ``method`` requests for ``kind`` (manifests, tags) the registry served."""
    lines = registry.log.read_text(errors="replace").splitlines()
    return sum(1 for line in lines if f'"{method} /v2/' in line and f"/{kind}/" in line)


def make_env(registry: Registry, root: Path, extra: str = "") -> Path:
    image = f"{registry.host}/acme/app"
    for tag in ("1.0.0", "1.1.0"):
        push_image(registry, "acme/app", tag)
    remote = make_remote(root, {"envs/dev/app.yaml": DEPLOYMENT.format(image=image).encode()})
    policies = root / "policies"
    policies.mkdir()
    (policies / "dev.yaml").write_text(
        f"environment: dev\nrepo: {{url: {remote}, path: envs/dev}}\n"
        f"images:\n  - {{name: app, repository: {image}, range: '^1'{extra}}}\n"
    )
    return policies


def test_text_plan_fetches_no_digest_it_does_not_show(registry: Registry, tmp_path: Path) -> None:
    """A text plan moving a tag-only reference makes no manifest request; JSON output, which
    shows the new version's digest, makes one HEAD."""
    policies = make_env(registry, tmp_path)
    args = ("--policies", str(policies), "--cache-dir", str(tmp_path / "cache"))
    result = run_cli("plan", *args)
    assert "1.0.0 -> 1.1.0" in result.stdout, result.stdout + result.stderr
    assert requests(registry, "HEAD", "manifests") == 0
    assert requests(registry, "GET", "manifests") == 0
    assert requests(registry, "GET", "tags") == 1
    result = run_cli("plan", "--output", "json", *args)
    (change,) = json.loads(result.stdout)["environments"][0]["changes"]
    assert change["image_digest"] is not None
    assert requests(registry, "HEAD", "manifests") == 1


def test_text_plan_still_fetches_a_pinned_digest(registry: Registry, tmp_path: Path) -> None:
    """With `digest: pin` the digest is written into the file, so a text plan fetches it."""
    policies = make_env(registry, tmp_path, extra=", digest: pin")
    result = run_cli("plan", "--policies", str(policies), "--cache-dir", str(tmp_path / "c"))
    assert "-> 1.1.0@sha256:" in result.stdout, result.stdout + result.stderr
    assert requests(registry, "HEAD", "manifests") == 1


def test_cycles_sharing_a_memo_select_again_only_when_the_tag_list_changes(
    registry: Registry, tmp_path: Path
) -> None:
    """A second cycle with the same memo reuses the decision; a new tag is still seen."""
    policies = make_env(registry, tmp_path)
    memo = SelectionMemo()

    async def cycle() -> list[str]:
        async with RegistryClient() as client:
            result = await run_cycle(
                load_policies(policies).environments,
                registry=client,
                repos_dir=tmp_path / "repos",
                publish=False,
                memo=memo,
                image_digests=False,
            )
        (env,) = result.environments
        return [c.new for c in env.plan.changes]

    assert anyio.run(cycle) == ["1.1.0"]
    assert memo.hits == 0
    assert anyio.run(cycle) == ["1.1.0"]
    assert memo.hits == 1
    push_image(registry, "acme/app", "1.2.0")
    assert anyio.run(cycle) == ["1.2.0"]
    assert memo.hits == 1


def test_planning_again_after_fetching_digests_selects_nothing_again(
    registry: Registry, tmp_path: Path
) -> None:
    """A cycle that fetches the new version's digest (for the commit trailer) plans a second
    time with it, and that plan takes its decision from the memo."""
    policies = make_env(registry, tmp_path)
    memo = SelectionMemo()

    async def cycle() -> str | None:
        async with RegistryClient() as client:
            result = await run_cycle(
                load_policies(policies).environments,
                registry=client,
                repos_dir=tmp_path / "repos",
                publish=False,
                memo=memo,
            )
        ((change,),) = [r.plan.changes for r in result.environments]
        return change.image_digest

    assert anyio.run(cycle) is not None
    assert memo.hits == 1


def scan(*names: str, fingerprint: str | None = "f1") -> ImageScan:
    first_seen = NOW - timedelta(minutes=30)
    return ImageScan(
        tags=tuple(TagInfo(name=n, first_seen=first_seen) for n in names), fingerprint=fingerprint
    )


def test_memo_keys_on_fingerprint_rule_and_current_tag() -> None:
    """Same fingerprint, rule and current tag hit; any of them changed misses."""
    memo = SelectionMemo()
    rule = SelectionRule(range="^1")
    tags = scan("1.0.0", "1.1.0")
    assert memo.select("r", tags, tags.tags, rule, "1.0.0", NOW).tag == "1.1.0"
    assert memo.select("r", tags, tags.tags, rule, "1.0.0", NOW).tag == "1.1.0"
    assert memo.hits == 1
    other = scan("1.0.0", "1.1.0", fingerprint="f2")
    memo.select("r", other, other.tags, rule, "1.0.0", NOW)
    memo.select("r", tags, tags.tags, SelectionRule(range="~1.0"), "1.0.0", NOW)
    memo.select("r", tags, tags.tags, rule, "1.1.0", NOW)
    unknown = scan("1.0.0", "1.1.0", fingerprint=None)
    memo.select("r", unknown, unknown.tags, rule, "1.0.0", NOW)
    assert memo.hits == 1


def test_memo_never_answers_for_rules_that_read_times() -> None:
    """A min_age rule depends on the clock, so it is selected every time."""
    memo = SelectionMemo()
    rule = SelectionRule(range="^1", min_age=timedelta(hours=1))
    tags = scan("1.0.0", "1.1.0")
    assert memo.select("r", tags, tags.tags, rule, "1.0.0", NOW).tag is None  # both 30 minutes old
    assert memo.select("r", tags, tags.tags, rule, "1.0.0", NOW + timedelta(hours=1)).tag == "1.1.0"
    assert memo.hits == 0


def test_memo_drops_decisions_unused_for_a_cycle() -> None:
    """A decision survives one cycle unused, not two: the memo stays the size of a cycle."""
    memo = SelectionMemo()
    rule = SelectionRule(range="^1")
    tags = scan("1.0.0", "1.1.0")
    memo.select("r", tags, tags.tags, rule, "1.0.0", NOW)
    memo.new_cycle()
    memo.select("r", tags, tags.tags, rule, "1.0.0", NOW)
    assert memo.hits == 1
    memo.new_cycle()
    memo.new_cycle()
    memo.select("r", tags, tags.tags, rule, "1.0.0", NOW)
    assert memo.hits == 1


def test_stored_decisions_answer_a_new_process_only_for_the_same_tags_and_rule(
    tmp_path: Path,
) -> None:
    """A decision stored by one process answers the next one for the same tag list, rule and
    running tag; a changed tag list or rule is selected afresh, never served the old answer."""
    path = tmp_path / "registry.sqlite"
    rule = SelectionRule(range="^1")
    tags = scan("1.0.0", "1.0.1", "1.1.0")
    first_store = Cache(path)
    first = SelectionMemo(store=first_store, keep_verdicts=False)
    assert first.select("r", tags, tags.tags, rule, "1.0.0", NOW).tag == "1.1.0"
    first_store.close()

    store = Cache(path)
    second = SelectionMemo(store=store, keep_verdicts=False)
    decision = second.select("r", tags, tags.tags, rule, "1.0.0", NOW)
    assert (decision.tag, second.hits) == ("1.1.0", 1)
    newer = scan("1.0.0", "1.0.1", "1.1.0", "1.2.0", fingerprint="f2")
    assert second.select("r", newer, newer.tags, rule, "1.0.0", NOW).tag == "1.2.0"
    patch_only = SelectionRule(range="~1.0")
    assert second.select("r", tags, tags.tags, patch_only, "1.0.0", NOW).tag == "1.0.1"
    assert second.hits == 1
    store.close()


def test_plan_in_a_new_process_sees_a_new_tag_and_survives_a_deleted_store(
    registry: Registry, tmp_path: Path
) -> None:
    """`imagebot plan` run again moves to a tag pushed in between, plans the same after its
    stored decisions are deleted, and `--explain` still gives every tag's verdict."""
    policies = make_env(registry, tmp_path)
    cache = tmp_path / "cache"
    args = ("--policies", str(policies), "--cache-dir", str(cache))
    assert "1.0.0 -> 1.1.0" in run_cli("plan", *args).stdout
    assert "1.0.0 -> 1.1.0" in run_cli("plan", *args).stdout
    push_image(registry, "acme/app", "1.2.0")
    assert "1.0.0 -> 1.2.0" in run_cli("plan", *args).stdout
    (cache / "registry.sqlite").unlink()
    assert "1.0.0 -> 1.2.0" in run_cli("plan", *args).stdout
    explained = run_cli("plan", "--explain", *args).stdout
    verdicts = [line.split()[:2] for line in explained.splitlines() if line.startswith("    ")]
    assert ["+", "1.1.0"] in verdicts and ["*", "1.2.0"] in verdicts, explained


def test_a_tag_list_is_fingerprinted_as_a_set() -> None:
    """Registries list tags in no fixed order (Distribution: as found on disk); a listing in
    another order is the same listing, so stored decisions still answer for it."""
    from imagebot.registry.scan import fingerprint

    assert fingerprint(["1.0.10", "1.0.9", "latest"]) == fingerprint(["latest", "1.0.9", "1.0.10"])
    assert fingerprint(["1.0.10", "1.0.9"]) != fingerprint(["1.0.10", "1.0.9", "1.0.11"])


def test_apply_over_an_unreadable_cache_file_moves_it_aside_and_runs(
    registry: Registry, tmp_path: Path
) -> None:
    """`imagebot apply` with a cache file SQLite cannot read warns, moves it aside, publishes,
    and the next run uses the new file without a warning."""
    policies = make_env(registry, tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "registry.sqlite").write_bytes(b"\x00garbage" * 512)
    args = ("--policies", str(policies), "--cache-dir", str(cache))
    result = run_cli("apply", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pushed" in result.stdout
    lines = result.stderr.splitlines()
    (warning,) = [json.loads(line) for line in lines if "cache_unreadable" in line]
    assert warning["moved_to"] == str(cache / "registry.sqlite.unreadable")
    assert (cache / "registry.sqlite.unreadable").read_bytes() == b"\x00garbage" * 512
    again = run_cli("plan", *args)
    assert again.returncode == 0 and "cache_unreadable" not in again.stderr, again.stderr
    assert "dev: 1 image up to date" in again.stdout.splitlines(), again.stdout
