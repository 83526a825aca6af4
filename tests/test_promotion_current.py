"""The reference that stands for each image in an environment's files: the ownership rule
(``governing``) gives every image the answer the per-image definition gives (the first
target, by file and line, that is a marker naming the entry or a plain reference to its
repository)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from imagebot.core.governing import govern
from imagebot.core.policy import EnvironmentPolicy, ImagePolicy
from imagebot.core.rewrite import Target

REPOS = ["ghcr.io/acme/a", "ghcr.io/acme/b", "docker.io/library/redis"]
IMAGES = [
    ImagePolicy(name="a", repository="ghcr.io/acme/a"),
    ImagePolicy(name="b", repository="ghcr.io/acme/b"),
    ImagePolicy(name="redis", repository="redis"),
    ImagePolicy(name="unused", repository="ghcr.io/acme/unused"),
]


def one_by_one(image: ImagePolicy, targets: dict[str, list[Target]]) -> Target | None:
    """The definition: the first target by file and line that a marker naming the image
    (``namespace:name`` for Flux) or a plain reference to its repository is."""
    found = [
        (path, t.line, n, t)
        for path, ts in targets.items()
        for n, t in enumerate(ts)
        if (t.policy is not None and image.name in (t.policy, t.policy.split(":")[-1]))
        or (t.policy is None and t.repository == image.normalized_repository)
    ]
    return min(found, key=lambda f: f[:3])[3] if found else None


target = st.builds(
    lambda repo, marker, line, tag: Target(
        source="f",
        line=line,
        kind="workload",
        field="image",
        repository=repo if marker is None else None,
        policy=marker,
        tag=tag,
        digest=None,
    ),
    repo=st.sampled_from(REPOS),
    marker=st.one_of(st.none(), st.sampled_from(["a", "b", "flux-system:redis", "other"])),
    line=st.integers(1, 50),
    tag=st.sampled_from(["1.0.0", "1.1.0", "2.0.0"]),
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["a.yaml", "b/c.yaml", "b/a.yaml", "z.yml"]), st.lists(target, max_size=4)
    )
)
def test_one_pass_gives_each_image_what_the_definition_gives(
    targets: dict[str, list[Target]],
) -> None:
    """Each image's standing reference is the definition's, in one pass over the targets."""
    policy = EnvironmentPolicy.model_validate(
        {"environment": "dev", "repo": {"url": "x"}, "images": IMAGES}
    )
    found = {g.image: g.standing for g in govern(policy, targets).groups}
    for image in IMAGES:
        assert found.get(image.name) is one_by_one(image, targets), image.name
