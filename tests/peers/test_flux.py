"""Flux's own test tables and fixtures, run through imagebot.

Sources: fluxcd/image-automation-controller ``internal/update/update_test.go``
(``TestUpdateWithSetters``, fixtures in ``testdata/setters``), fluxcd/image-reflector-controller
``internal/policy/{semver,alphabetical,numerical}_test.go`` (``Test*_Latest``), and
fluxcd/flux2 ``tests/image-automation`` (the end-to-end image automation test); the
Masterminds/semver constraint table and fluxcd/pkg's ``TestParseVersion`` (how Flux reads
ranges and tags). Commits in tests/peers/SOURCES.md.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from imagebot.core.plan import ImageScan, plan_environment
from imagebot.core.policy_file import parse_policy
from imagebot.core.rewrite import locate
from imagebot.core.selection import TagInfo
from imagebot.migrate import CONVERTERS
from tests.peers.support import FIXTURES, NOW, choose, converted, migrate_and_plan
from tests.support.gitenv import make_remote, show
from tests.support.registry import push_image, run_registry

SETTERS = FIXTURES / "flux-setters"
DIGEST = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be"

# TestUpdateWithSetters' three ImagePolicies (namespace automation-ns) as imagebot policies:
# their LatestRef (index.repo.fake/updated:v1.0.1, image:v1.0.0, image:v1.0.0@DIGEST) are the
# only tags the scans hold, as the peer's test hands each policy its latest ref.
SETTERS_POLICY = """\
environment: automation-ns
repo: {url: /unused}
detect: markers
marker_namespace: automation-ns
images:
  - {name: policy, repository: index.repo.fake/updated}
  - {name: unchanged, repository: image}
  - {name: policy-with-digest, repository: image, digest: pin}
"""


def test_update_with_setters_matches_flux_expected_files() -> None:
    """TestUpdateWithSetters: every file imagebot writes equals Flux's expected file byte for
    byte (name, tag, digest-only and whole-reference markers, a file named Kustomization),
    and the files Flux leaves alone (unmarked, other namespace) stay as they were."""
    files = {
        p.name: p.read_bytes().decode("utf-8") for p in sorted((SETTERS / "original").iterdir())
    }
    loaded = parse_policy(SETTERS_POLICY, source="automation-ns.yaml")
    scans = {
        "index.repo.fake/updated": ImageScan(tags=(TagInfo(name="v1.0.1"),)),
        "docker.io/library/image": ImageScan(
            tags=(TagInfo(name="v1.0.0"),), digests={"v1.0.0": DIGEST}
        ),
    }
    plan = plan_environment(
        loaded.policy,
        source="automation-ns.yaml",
        files=files,
        targets={name: locate(text, source=name) for name, text in files.items()},
        scans=scans,
        now=NOW,
    )
    assert plan.problems == ()
    expected = {p.name: p.read_bytes().decode("utf-8") for p in (SETTERS / "expected").iterdir()}
    assert dict(plan.new_files) == expected
    renamed = {(c.file, c.new_name) for c in plan.changes if c.new_name}
    # Flux's Result: OldValue "replaced" -> NewValue "index.repo.fake/updated" in both
    # kustomization files, and "image:v1.0.0" -> "index.repo.fake/updated:v1.0.1".
    assert renamed == {
        ("Kustomization", "index.repo.fake/updated"),
        ("kustomization.yml", "index.repo.fake/updated"),
        ("marked.yaml", "index.repo.fake/updated"),
    }


def _flux_manifests(policy_spec: str, exclusion: str = "") -> dict[str, str]:
    """An ImageRepository, ImagePolicy and ImageUpdateAutomation around ``policy_spec``."""
    image = "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\n"
    image += "metadata: {name: app, namespace: flux-system}\nspec:\n  image: ghcr.io/acme/app\n"
    image += f"{exclusion}\n" if exclusion else ""
    policy = "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\n"
    policy += "metadata: {name: app, namespace: flux-system}\nspec:\n"
    policy += "  imageRepositoryRef: {name: app}\n" + textwrap.indent(policy_spec, "  ") + "\n"
    automation = textwrap.dedent(
        """\
        apiVersion: image.toolkit.fluxcd.io/v1beta2
        kind: ImageUpdateAutomation
        metadata: {name: flux-system, namespace: flux-system}
        spec:
          sourceRef: {kind: GitRepository, name: flux-system}
          update: {path: ./clusters/dev, strategy: Setters}
        """
    )
    return {"image.yaml": "---\n".join((image, policy, automation))}


#: (peer test and case label, policy spec, tags, Flux's choice)
REFLECTOR_CASES = [
    ("TestSemVer_Latest/Regular", "policy: {semver: {range: 1.0.x}}",
     ["1.0.0", "1.0.0.1", "1.0.0p", "1.0.1", "1.2.0", "0.1.0"], "1.0.1"),
    ("TestSemVer_Latest/Regular with prefix", "policy: {semver: {range: 1.0.x}}",
     ["v1.2.3", "v1.0.0", "v0.1.0"], "v1.0.0"),
    ("TestSemVer_Latest/With invalid prefix", "policy: {semver: {range: 1.0.x}}",
     ["b1.2.3", "b1.0.0", "b0.1.0"], None),
    ("TestSemVer_Latest/With empty list", "policy: {semver: {range: 1.0.x}}", [], None),
    ("TestSemVer_Latest/With non-matching version list", "policy: {semver: {range: 1.0.x}}",
     ["1.2.0"], None),
    ("TestImagePolicyReconciler_applyPolicy/semver, no tag filter",
     "policy: {semver: {range: 1.0.x}}", ["1.0.0", "2.0.0", "1.0.1", "1.2.0"], "1.0.1"),
    ("TestImagePolicyReconciler_applyPolicy/semver with 'v' prefix, no tag filter",
     "policy: {semver: {range: v1.0.x}}", ["v1.0.0", "v2.0.0", "v1.0.1", "v1.2.0"], "v1.0.1"),
    ("TestImagePolicyReconciler_applyPolicy/semver with 'v' prefix but data without 'v' prefix",
     "policy: {semver: {range: v1.0.x}}", ["1.0.0", "2.0.0", "1.0.1", "1.2.0"], "1.0.1"),
    ("TestImagePolicyReconciler_applyPolicy/semver without 'v' prefix but data with 'v' prefix",
     "policy: {semver: {range: 1.0.x}}", ["v1.0.0", "v2.0.0", "v1.0.1", "v1.2.0"], "v1.0.1"),
    ("TestImagePolicyReconciler_applyPolicy/valid tag filter with numerical policy",
     "filterTags: {pattern: '1.0.0-rc\\.(?P<num>[0-9]+)', extract: '$num'}\n"
     "policy: {numerical: {order: asc}}",
     ["1.0.0", "1.0.0-rc.1", "1.0.0-rc.2", "1.0.0-rc.3", "1.0.1-rc.2"], "1.0.0-rc.3"),
    ("TestAlphabetical_Latest/Ubuntu CalVer", "policy: {alphabetical: {}}",
     ["16.04", "16.04.1", "16.10", "20.04", "20.10"], "20.10"),
    ("TestAlphabetical_Latest/Ubuntu CalVer descending", "policy: {alphabetical: {order: desc}}",
     ["16.04", "16.04.1", "16.10", "20.04", "20.10"], "16.04"),
    ("TestAlphabetical_Latest/Ubuntu code names", "policy: {alphabetical: {order: asc}}",
     ["xenial", "yakkety", "zesty", "artful", "bionic"], "zesty"),
    ("TestAlphabetical_Latest/Ubuntu code names descending",
     "policy: {alphabetical: {order: desc}}",
     ["xenial", "yakkety", "zesty", "artful", "bionic"], "artful"),
    ("TestAlphabetical_Latest/Timestamps", "policy: {alphabetical: {}}",
     ["1606234201", "1606364286", "1606334092", "1606334284", "1606334201"], "1606364286"),
    ("TestAlphabetical_Latest/Timestamps desc", "policy: {alphabetical: {order: desc}}",
     ["1606234201", "1606364286", "1606334092", "1606334284", "1606334201"], "1606234201"),
    ("TestAlphabetical_Latest/Timestamps with prefix", "policy: {alphabetical: {}}",
     ["rel-1606234201", "rel-1606364286", "rel-1606334092", "rel-1606334284"],
     "rel-1606364286"),
    ("TestAlphabetical_Latest/Empty version list", "policy: {alphabetical: {}}", [], None),
    ("TestNumerical_Latest/integers ascending", "policy: {numerical: {}}",
     ["-62", "-88", "73", "72", "15", "16", "15", "29", "-33", "-91"], "73"),
    ("TestNumerical_Latest/integers descending", "policy: {numerical: {order: desc}}",
     ["5", "-8", "-78", "25", "70", "-4", "80", "92", "-20", "-24"], "-78"),
    ("TestNumerical_Latest/floats ascending", "policy: {numerical: {order: asc}}",
     ["47.40896403322944", "-27.8520927455902", "-27.930666514224427", "-31.352485948094568",
      "-50.41072694704882", "-21.962849842263736", "24.71884721436865", "-39.99177354004344",
      "53.47333823144817", "3.2008658570411086"], "53.47333823144817"),
    ("TestNumerical_Latest/floats descending", "policy: {numerical: {order: desc}}",
     ["-65.27202780220686", "57.82948329142309", "22.40184684363291", "-86.36934305697784",
      "-90.29082099756083", "-12.041712603564264", "77.70488240399305", "-38.98425003883552",
      "16.06867070412028", "53.735674335181216"], "-90.29082099756083"),
    ("TestNumerical_Latest/Unix Timestamps ascending", "policy: {numerical: {}}",
     ["1606234201", "1606364286", "1606334092", "1606334284", "1606334201"], "1606364286"),
    ("TestNumerical_Latest/Unix Timestamps descending", "policy: {numerical: {order: desc}}",
     ["1606234201", "1606364286", "1606334092", "1606334284", "1606334201"], "1606234201"),
    ("TestNumerical_Latest/single value ascending", "policy: {numerical: {}}", ["1"], "1"),
    ("TestNumerical_Latest/single value descending", "policy: {numerical: {order: desc}}",
     ["1"], "1"),
    ("TestNumerical_Latest/Empty version list", "policy: {numerical: {}}", [], None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "spec", "tags", "flux"), REFLECTOR_CASES, ids=[c[0] for c in REFLECTOR_CASES]
)
def test_image_reflector_policy_tables(
    case: str, spec: str, tags: list[str], flux: str | None
) -> None:
    """An ImagePolicy converted by ``imagebot migrate --from flux`` picks the same tag as
    image-reflector-controller's Latest() on the same tags (None where Flux errors)."""
    (policy,) = converted("flux", _flux_manifests(spec))
    assert choose(policy, tags) == flux, case


def test_numerical_with_invalid_values_differs_on_purpose() -> None:
    """TestNumerical_Latest/With invalid numerical value: Flux fails the whole policy when one
    tag is not a number; imagebot skips that tag and picks from the rest (docs/migrating.md)."""
    (policy,) = converted("flux", _flux_manifests("policy: {numerical: {}}"))
    assert choose(policy, ["0", "1a", "b"]) == "0"


def test_exclusion_list_and_filter_tags_are_kept() -> None:
    """An ImageRepository's exclusionList and an ImagePolicy's filterTags pattern/extract
    become tags.exclude, tags.include and tags.extract, and select as Flux documents
    (https://fluxcd.io/flux/components/image/imagepolicies/#filter-tags)."""
    spec = (
        "filterTags:\n  pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)'\n  extract: '$ts'\n"
        "policy: {numerical: {order: asc}}"
    )
    manifests = _flux_manifests(spec, exclusion="  exclusionList: ['^main-0']")
    (policy,) = converted("flux", manifests)
    assert "include:" in policy and "extract:" in policy and "^main-0" in policy
    tags = ["main-0aa-1700000009", "main-abc-1700000001", "main-def-1700000005", "other-9"]
    assert choose(policy, tags) == "main-def-1700000005"


def test_flux_e2e_image_automation_converts_checks_and_plans(tmp_path: Path) -> None:
    """fluxcd/flux2 tests/image-automation: ``imagebot migrate --from flux`` turns auto.yaml
    into a policy ``imagebot check`` accepts, and ``imagebot plan`` moves the marked
    kustomization to the version Flux's semver 5.2.x policy picks (5.2.1 of 5.2.0, 5.2.1,
    6.8.0), with that version's digest in the ``:digest``-marked field.

    Test-side substitutions: ghcr.io -> the loopback registry; the GitRepository that
    ``flux bootstrap`` writes (gotk-sync.yaml, not part of the fixture) names a local remote.
    """
    with run_registry(tmp_path / "registry") as registry:
        digests = {
            tag: push_image(registry, "stefanprodan/podinfo", tag)
            for tag in ("5.2.0", "5.2.1", "6.8.0")
        }

        def local(text: str) -> str:
            return text.replace("ghcr.io/", f"{registry.host}/")

        kustomization = local((FIXTURES / "flux-e2e" / "kustomization.yaml").read_text())
        remote = make_remote(
            tmp_path / "git",
            {"test-cluster/podinfo-auto/kustomization.yaml": kustomization.encode()},
        )
        manifests = tmp_path / "flux"
        manifests.mkdir()
        (manifests / "auto.yaml").write_text(
            local((FIXTURES / "flux-e2e" / "auto.yaml").read_text())
        )
        (manifests / "gotk-sync.yaml").write_text(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"
            "metadata: {name: flux-system, namespace: flux-system}\n"
            f"spec: {{url: {json.dumps(str(remote))}, ref: {{branch: main}}}}\n"
        )
        (env,) = migrate_and_plan("flux", manifests, tmp_path)
        (change,) = env["changes"]
        assert (change["from"]["tag"], change["to"]) == (
            "6.8.0",
            {"tag": "5.2.1", "digest": digests["5.2.1"]},
        )
        assert show(remote, "test-cluster/podinfo-auto/kustomization.yaml").decode() == (
            kustomization
        )  # plan publishes nothing


def _plan_files(policy: str, files: dict[str, str], tags: dict[str, str]) -> dict[str, str]:
    loaded = parse_policy(policy, source="dev.yaml")
    image = loaded.policy.images[0]
    plan = plan_environment(
        loaded.policy,
        source="dev.yaml",
        files=files,
        targets={name: locate(text, source=name) for name, text in files.items()},
        scans={image.normalized_repository: ImageScan(tags=tuple(TagInfo(name=t) for t in tags))},
        now=NOW,
    )
    assert plan.problems == ()
    return {**files, **plan.new_files}


def _read(directory: str) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((FIXTURES / directory).iterdir())}


USED = "environment: dev\nrepo: {url: /unused}\nimages:\n  - {name: used, repository: used}\n"


def test_replace_unmarked_references() -> None:
    """testdata/replace (original -> expected): with automatic detection, the unmarked
    ``used:v1.0.0`` references move to v1.1.0, byte for byte as Flux's expected files."""
    out = _plan_files(USED, _read("flux-replace-original"), {"v1.1.0": ""})
    assert out == _read("flux-replace-expected")


def test_replace_keeps_comments_and_indentation_on_purpose() -> None:
    """testdata/replace/commented: the comment stays (as in Flux); Flux also re-indents the
    containers list, imagebot changes only the tag's characters (docs/migrating.md) — the
    two files read as the same YAML."""
    (original,) = _read("flux-replace-commented").values()
    (flux,) = _read("flux-replace-commented-expected").values()
    out = _plan_files(USED, {"deployment.yaml": original}, {"v1.1.0": ""})["deployment.yaml"]
    assert out == original.replace("used:v1.0.0", "used:v1.1.0")
    assert out != flux and yaml.safe_load(out) == yaml.safe_load(flux)


def test_leave_files_without_a_change_untouched_on_purpose() -> None:
    """testdata/leave: a file with nothing to update stays byte for byte; Flux rewrites it
    with its own indentation (same YAML)."""
    original = _read("flux-leave-original")
    out = _plan_files(USED, original, {"v1.1.0": ""})
    assert out == original
    flux = _read("flux-leave-expected")
    assert {k: yaml.safe_load(v) for k, v in flux.items()} == {
        k: yaml.safe_load(v) for k, v in out.items()
    }


#: Masterminds/semver ``constraints_test.go`` ``TestConstraintsCheck`` (commit 71f2b39, after
#: v3.4.0), the rows that involve a prerelease: Flux's ``internal/policy/semver.go`` picks a
#: tag when ``Constraints.Check`` holds (go.mod: Masterminds/semver v3.5.0; Argo CD Image
#: Updater's ``registry-scanner/pkg/image/version.go`` the same, v3.4.0).
#: (constraint, version, Check's answer)
MASTERMINDS_PRERELEASE = [
    (">=1.1", "4.1.0-beta", False),
    ("<=1.1", "0.1.0-alpha", False),
    ("!=4.1", "4.1.0", False),
    ("!=4.x", "4.1.0", False),
    ("!=4.2.x", "4.2.3", False),
    (">= 1.0.0  <= 2.0.0-beta", "1.0.1-beta", True),
    (">= 1.0.0  <= 2.0.0-beta", "1.0.1", True),
    (">= 1.0.0  <= 2.0.0-beta", "3.0.0", False),
    (">= 1.0.0  <= 2.0.0-beta || > 3", "1.0.1-beta", True),
    (">= 1.0.0  <= 2.0.0-beta || > 3", "3.0.1-beta", False),
    (">= 1.0.0  <= 2.0.0-beta != 1.0.1 || > 3", "1.0.1-beta", True),
    (">= 1.0.0  <= 2.0.0-beta != 1.0.1-beta || > 3", "1.0.1-beta", False),
    (">= 1.0.0-0  <= 2.0.0", "1.0.1-beta", True),
    ("^1.x", "1.1.1-beta1", False),
    ("^1.1.2-alpha", "1.2.1-beta1", True),
    ("^1.2.x-alpha", "1.1.1-beta1", False),
    ("~1.1", "1.1.1-alpha", False),
    ("~1.1.1-beta", "1.1.1-alpha", False),
    ("~1.1.1-beta", "1.1.1", True),
]


@pytest.mark.parametrize(("constraint", "version", "check"), MASTERMINDS_PRERELEASE)
def test_masterminds_prerelease_ranges(constraint: str, version: str, check: bool) -> None:
    """A Flux semver range converted by ``imagebot migrate`` (range_style: masterminds) picks
    ``version`` exactly when Masterminds' Constraints.Check accepts it."""
    (policy,) = converted("flux", _flux_manifests(f"policy: {{semver: {{range: '{constraint}'}}}}"))
    assert "range_style: masterminds" in policy
    assert (choose(policy, [version]) == version) is check


def test_flux_docs_prerelease_examples() -> None:
    """docs/spec/v1/imagepolicies.md "selecting the latest release candidate" (filterTags
    '.*-rc.*', range '^1.x-0') and docs/spec/v1beta1/imagepolicies.md "latest version
    including pre-releases" ('>=1.0.0-0') pick what Masterminds' reading picks."""
    tags = ["1.0.0", "1.1.0-rc.1", "1.1.0-rc.2", "1.1.0", "1.2.0-rc.1", "2.0.0-rc.1"]
    spec = "filterTags: {pattern: '.*-rc.*'}\npolicy: {semver: {range: '^1.x-0'}}"
    (policy,) = converted("flux", _flux_manifests(spec))
    assert choose(policy, tags) == "1.2.0-rc.1"
    (policy,) = converted("flux", _flux_manifests("policy: {semver: {range: '>=1.0.0-0'}}"))
    assert choose(policy, tags) == "2.0.0-rc.1"


#: TestConstraintsCheck rows imagebot reads otherwise, on purpose (docs/migrating.md, Flux,
#: "Ranges"): spellings it refuses (the conversion warns and writes no range) and ~0.0.0.
MASTERMINDS_REFUSED = ["!=4.1-alpha", "<=1.1-a", "1.1-3", "~1.1-alpha", "1.0.0 - 2.0.0 <=2.0.0"]


@pytest.mark.parametrize("constraint", MASTERMINDS_REFUSED)
def test_masterminds_spellings_imagebot_refuses_are_reported(constraint: str) -> None:
    """A prerelease on a partial version without an x, or a hyphen range beside other
    comparisons: the conversion warns, naming the range, and writes none."""
    manifests = _flux_manifests(f"policy: {{semver: {{range: '{constraint}'}}}}")
    migration = CONVERTERS["flux"](manifests, None)
    assert any(f"range {constraint!r} is not accepted" in w for w in migration.warnings)
    (policy,) = converted("flux", manifests)
    assert parse_policy(policy, source="p.yaml").policy.images[0].rule().range is None


def test_masterminds_differences_on_purpose() -> None:
    """TestConstraintsCheck {"~0.0.0", "1.2.3", true}: Masterminds reads ~0.0.0 as any
    version, imagebot as npm does (<0.1.0). Constraints.Check admits prereleases per ``||``
    alternative that names one; imagebot's masterminds style in every alternative once one
    names a prerelease (>=1.0.0-0 <2 || ^3 admits 3.1.0-rc.1 here, not in Flux): the
    conversion warns about such a range."""
    (policy,) = converted("flux", _flux_manifests("policy: {semver: {range: '~0.0.0'}}"))
    assert choose(policy, ["1.2.3"]) is None
    manifests = _flux_manifests("policy: {semver: {range: '>=1.0.0-0 <2 || ^3'}}")
    (policy,) = converted("flux", manifests)
    assert choose(policy, ["3.1.0-rc.1"]) == "3.1.0-rc.1"
    warnings = CONVERTERS["flux"](manifests, None).warnings
    assert any("only in the || alternatives that name one" in w for w in warnings)


#: fluxcd/pkg ``version/version_test.go`` ``TestParseVersion`` (commit e2cfd1a2): the tags
#: Flux's semver policy reads as versions (``version.ParseVersion`` wants three parts).
PARSE_VERSION = [
    ("v1.2.3", True),
    ("v2025.07.03", True),
    ("v1.0", False),
    ("v1", False),
    ("v1.2.beta", False),
    ("v1.2-5", False),
    ("v1.2-beta5", False),
    ("v1.2.3.4", False),
]


@pytest.mark.parametrize(("tag", "version"), PARSE_VERSION)
def test_flux_reads_only_three_part_versions(tag: str, version: bool) -> None:
    """A converted Flux semver policy (keep_precision: false, no partial) picks a tag only
    when Flux's ParseVersion reads it, even when the running tag is partial (v1.0)."""
    (policy,) = converted("flux", _flux_manifests("policy: {semver: {range: '*'}}"))
    assert "keep_precision: false" in policy and "partial" not in policy
    assert (choose(policy, [tag], current="v1.0") == tag) is version


def test_suffixes_are_variants_on_purpose() -> None:
    """Flux reads ``1.2.4-alpine`` as a SemVer prerelease (Masterminds' Check rejects it for
    a range without one, TestConstraintsCheck {">=1.1", "4.1.0-beta", false}), so a file on
    1.2.3-alpine moves to the plain 1.2.4; imagebot reads the suffix as a variant the tag
    keeps and moves to 1.2.4-alpine (docs/migrating.md)."""
    (policy,) = converted("flux", _flux_manifests("policy: {semver: {range: '>=1.0.0'}}"))
    tags = ["1.2.3-alpine", "1.2.4", "1.2.4-alpine"]
    assert choose(policy, tags, current="1.2.3-alpine") == "1.2.4-alpine"
