"""Edits verified by re-parsing only the top-level entries that hold them stay byte-exact."""

from __future__ import annotations

from imagebot.core.rewrite import Edit, apply, locate

DIGEST = "sha256:" + "cd" * 32


def _set_all(text: str, tag: str | None, digest: str | None = None) -> str:
    return apply(text, [Edit(t, tag, digest) for t in locate(text)])


def test_edits_in_several_documents_and_top_level_entries() -> None:
    """A longer tag in an earlier document moves the later ones; every edited top-level entry
    of a values document is still found and checked in the new text."""
    text = (
        "image: nginx:1.0\n"
        "---\n"
        "# values\n"
        "frontend:\n"
        "  image:\n"
        "    repository: ghcr.io/acme/web\n"
        "    tag: '2.0'\n"
        "script: |\n"
        "  echo nginx:1.0\n"
        "\n"
        "backend:\n"
        "  image: ghcr.io/acme/api:3.0 # pinned\n"
        "replicas: 2\n"
    )
    want = (
        text.replace("nginx:1.0\n---", "nginx:10.20.30-rc.1\n---")
        .replace("tag: '2.0'", "tag: '10.20.30-rc.1'")
        .replace("api:3.0", "api:10.20.30-rc.1")
    )
    assert _set_all(text, "10.20.30-rc.1") == want


def test_edit_in_the_last_entry_of_a_file_without_final_newline() -> None:
    """The last top-level entry runs to the end of the text, which has no line end."""
    text = "name: demo\nimage: nginx:1.0"
    assert _set_all(text, "1.1") == "name: demo\nimage: nginx:1.1"


def test_root_level_image_block_with_digest_cleared_and_tag_quoted() -> None:
    """An image block that is the document itself: its digest field is emptied when
    unpinned and a numeric-looking tag is quoted, both checked in the new text."""
    text = f"repository: nginx\ntag: v1\ndigest: {DIGEST}\npullPolicy: Always\n"
    want = 'repository: nginx\ntag: "1.10"\ndigest: ""\npullPolicy: Always\n'
    assert _set_all(text, "1.10") == want


def test_top_level_tag_added_after_a_block_scalar_entry() -> None:
    """A tag key added to a top-level image block that follows a block scalar lands on the
    line after ``repository`` and parses as the string written."""
    text = "notes: >-\n  text\n  more\nimage:\n  repository: nginx\n  pullPolicy: Always\n"
    want = (
        "notes: >-\n  text\n  more\nimage:\n  repository: nginx\n  tag: 2.0.1\n"
        "  pullPolicy: Always\n"
    )
    assert _set_all(text, "2.0.1") == want
