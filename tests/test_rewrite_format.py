"""Formatting survives an edit byte for byte, including what a ruamel.yaml round-trip loses."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from imagebot.core.rewrite import Edit, apply, locate
from imagebot.errors import EditError

FIXTURES = Path(__file__).parent / "fixtures" / "rewrite"

#: The five kinds of difference a ruamel.yaml round-trip makes (issue 5), one fixture each.
ROUND_TRIP_LOSSES = [
    "sequence-indent",
    "long-line",
    "document-markers",
    "null-and-flow",
    "crlf-trailing-space",
]


def ruamel_round_trip(text: str) -> str:
    yaml = YAML()
    out = io.StringIO()
    yaml.dump_all(list(yaml.load_all(text)), out)
    return out.getvalue()


def set_all(text: str, repository: str, tag: str | None, digest: str | None = None) -> str:
    targets = locate(text, repositories=[repository])
    assert targets, f"no reference to {repository}"
    return apply(text, [Edit(t, tag, digest) for t in targets])


@pytest.mark.parametrize("name", ROUND_TRIP_LOSSES)
def test_fixture_that_ruamel_reformats_keeps_every_other_byte(name: str) -> None:
    """Each fixture is one ruamel round-trip loses; imagebot's edit changes only the version."""
    original = (FIXTURES / f"{name}.yaml").read_bytes().decode("utf-8")
    expected = (FIXTURES / f"{name}.expected.yaml").read_bytes().decode("utf-8")
    assert ruamel_round_trip(original) != original
    assert set_all(original, "nginx", "1.27.2") == expected


def test_bom_is_kept_and_offsets_stay_exact() -> None:
    """A UTF-8 byte order mark stays in front, and the edit lands on the right characters."""
    data = "\ufeffkind: Pod\napiVersion: v1\nspec:\n  containers:\n  - image: nginx:1.25 # é\n"
    raw = data.encode("utf-8")
    out = set_all(raw.decode("utf-8"), "nginx", "1.27")
    assert out.encode("utf-8") == raw.replace(b"nginx:1.25", b"nginx:1.27")


def test_non_ascii_text_before_the_image_keeps_offsets() -> None:
    """Characters outside ASCII (and outside the BMP) before a reference do not shift the edit."""
    text = (
        "metadata:\n  annotations:\n    note: 'Grüße 🚀'\n"
        "image:\n  repository: nginx\n  tag: '1.25'\n"
    )
    assert set_all(text, "nginx", "1.27") == text.replace("'1.25'", "'1.27'")


def test_crlf_insertion_uses_the_file_line_ends() -> None:
    """A newTag added to a CRLF kustomization ends with CRLF like every other line."""
    text = (
        "images:\r\n- name: nginx\r\n  newName: mirror.io/nginx # mirror\r\nresources: [a.yaml]\r\n"
    )
    out = set_all(text, "mirror.io/nginx", "1.27")
    assert out == text.replace("# mirror\r\n", '# mirror\r\n  newTag: "1.27"\r\n')


def test_insertion_at_end_of_file_without_final_newline() -> None:
    """A tag added after the last line of a file without a final newline keeps it that way."""
    text = "image:\n  repository: nginx"
    assert set_all(text, "nginx", "1.27") == 'image:\n  repository: nginx\n  tag: "1.27"'


def test_flow_mapping_image_block_gains_tag_inline() -> None:
    """A flow-style image block without a tag gets ``, tag: ...`` inside its braces."""
    text = "image: {repository: nginx, pullPolicy: Always}\n"
    out = set_all(text, "nginx", "v1")
    assert out == "image: {repository: nginx, tag: v1, pullPolicy: Always}\n"


def test_block_scalar_image_keeps_its_indicator_and_indentation() -> None:
    """An image written as a ``>-`` block scalar keeps the block style."""
    text = "services:\n  web:\n    image: >-\n      nginx:1.25\n    ports: ['80']\n"
    assert set_all(text, "nginx", "1.27") == text.replace("nginx:1.25", "nginx:1.27")


def test_quotes_comments_and_anchor_elsewhere_are_kept() -> None:
    """Double and single quotes, trailing comments and unrelated anchors survive."""
    text = (
        "defaults: &defaults {replicas: 2}\n"
        'web:\n  <<: *defaults\n  image: "nginx:1.25"   # web\n'
        "api:\n  image: 'nginx:1.25'\n"
    )
    assert set_all(text, "nginx", "1.27") == text.replace("1.25", "1.27")


def test_alias_shared_by_two_images_is_refused_and_file_untouched() -> None:
    """One anchored tag used by two different images cannot change for only one of them."""
    text = (
        "common: &tag '1.25'\n"
        "web:\n  image:\n    repository: nginx\n    tag: *tag\n"
        "cache:\n  image:\n    repository: redis\n    tag: *tag\n"
    )
    with pytest.raises(EditError, match=r"<text>:\d+: .*would change too.*YAML alias") as info:
        set_all(text, "nginx", "1.27")
    assert "cache.image.tag" in str(info.value) or "common" in str(info.value)


def test_alias_shared_by_one_image_changes_everywhere() -> None:
    """An anchored image block reused for the same image is edited once, in the anchor."""
    text = "base: &img\n  repository: nginx\n  tag: '1.25'\nweb:\n  image: *img\n"
    assert set_all(text, "nginx", "1.27") == text.replace("'1.25'", "'1.27'")


def test_alias_to_a_non_image_field_is_refused() -> None:
    """A tag anchored and reused as a label would silently change the label: refused."""
    text = "image:\n  repository: nginx\n  tag: &v '1.25'\nlabels:\n  version: *v\n"
    with pytest.raises(EditError, match=r"labels\.version would change too"):
        set_all(text, "nginx", "1.27")


def test_duplicate_key_is_refused() -> None:
    """A mapping with a duplicate key is ambiguous to every tool, so it is not edited."""
    text = "image:\n  repository: nginx\n  tag: '1.25'\n  tag: '1.26'\n"
    with pytest.raises(EditError, match=r"<text>:\d+: .*duplicate key 'tag'"):
        set_all(text, "nginx", "1.27")


def test_helm_template_in_tag_is_refused() -> None:
    """A templated tag (``{{ }}``) is reported as such and not replaced."""
    text = "image:\n  repository: nginx\n  tag: '{{ .Chart.AppVersion }}'\n"
    with pytest.raises(EditError, match=r"<text>:3: cannot edit image: templated value"):
        set_all(text, "nginx", "1.27")


@pytest.mark.parametrize(
    ("tag", "written"),
    [
        ("1.10", '"1.10"'),
        ("20240101", '"20240101"'),
        ("1e3", '"1e3"'),
        ("2024-01-01", '"2024-01-01"'),
        ("on", '"on"'),
        ("v1.10", "v1.10"),
        ("1.2.3", "1.2.3"),
    ],
)
def test_plain_tag_is_quoted_only_when_yaml_would_not_read_a_string(tag: str, written: str) -> None:
    """A plain tag field stays plain unless YAML 1.1 or 1.2 would read a number, bool or date."""
    text = "image:\n  repository: nginx\n  tag: v1\n"
    assert set_all(text, "nginx", tag) == f"image:\n  repository: nginx\n  tag: {written}\n"


def test_null_tag_gets_a_value() -> None:
    """An empty ``tag:`` (null) receives the tag after a space."""
    text = "image:\n  repository: nginx\n  tag:\n  pullPolicy: Always\n"
    assert set_all(text, "nginx", "1.27.0") == text.replace("tag:\n", "tag: 1.27.0\n")


def test_stale_target_is_refused() -> None:
    """A target located in an older text of the file is not spliced into a newer one."""
    text = "image: nginx:1.25\n"
    target = locate(text)[0]
    with pytest.raises(EditError, match="changed since"):
        apply("image: nginx:1.26\n", [Edit(target, "1.27", None)])


def test_invalid_tag_is_refused() -> None:
    """A tag Docker would reject never reaches the file."""
    text = "image: nginx:1.25\n"
    with pytest.raises(EditError, match="invalid tag"):
        apply(text, [Edit(locate(text)[0], "1.27 # evil", None)])


def test_not_yaml_names_file_and_line() -> None:
    """A file that does not parse is reported with its name and line."""
    with pytest.raises(EditError, match=r"app/values\.yaml:3: not valid YAML"):
        locate("image:\n  tag: 1\n bad: [\n", source="app/values.yaml")
