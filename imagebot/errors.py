"""The one exception tree imagebot raises; every message names the thing it is about."""

from __future__ import annotations

from imagebot.redact import redact


class ImagebotError(Exception):
    """Base of every error imagebot raises on purpose. Its text never shows a secret: one a
    forge or a file echoed back is masked (imagebot.redact)."""

    def __str__(self) -> str:
        return redact(super().__str__())


class PolicyError(ImagebotError):
    """A policy file is invalid. Carries every problem found, each with file:line and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class InvalidReference(ImagebotError):
    """An image reference cannot be parsed."""


class RegistryError(ImagebotError):
    """A registry call failed. The message names registry and repository."""

    def __init__(self, message: str, *, registry: str = "", repository: str = "") -> None:
        self.registry = registry
        self.repository = repository
        self.detail = message
        where = "/".join(p for p in (registry, repository) if p)
        super().__init__(f"{where}: {message}" if where else message)


class AuthError(RegistryError):
    """Credentials were refused or could not be obtained."""


class NotFound(RegistryError):
    """The repository, tag or manifest does not exist."""


class RateLimited(RegistryError):
    """The registry asked us to slow down and retries ran out."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        registry: str = "",
        repository: str = "",
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, registry=registry, repository=repository)


class GitError(ImagebotError):
    """A git operation on an environment repo failed."""


class ForgeError(ImagebotError):
    """A forge (GitHub, GitLab, Gitea) API call failed. The message names the forge, the
    project and the action; ``status`` is the HTTP status, if there was one."""

    def __init__(
        self,
        message: str,
        *,
        forge: str = "",
        project: str = "",
        action: str = "",
        status: int | None = None,
    ) -> None:
        self.forge = forge
        self.project = project
        self.action = action
        self.status = status
        where = " ".join(p for p in (forge, project) if p)
        prefix = ": ".join(p for p in (where, action) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class EditError(ImagebotError):
    """A file cannot be edited safely; it is left untouched."""


class SelectionError(ImagebotError):
    """A selection rule (range, regex, template) is invalid; ``field`` names the rule field."""

    def __init__(self, message: str, *, field: str = "") -> None:
        self.field = field
        super().__init__(message)
