"""`imagebot serve` options: where the webhook secret comes from, and clear usage errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from imagebot.cli import serve
from imagebot.errors import ImagebotError
from tests.support.cli import run_cli


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    return parser.parse_args(argv)


def webhook_secret(args: argparse.Namespace) -> str | None:
    return serve.read_secret(
        "IMAGEBOT_WEBHOOK_SECRET", args.webhook_secret_file, "--webhook-secret-file"
    )


def test_secret_from_file_loses_its_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mounted Secret file's content is the secret, without the newline editors add."""
    monkeypatch.delenv("IMAGEBOT_WEBHOOK_SECRET", raising=False)
    path = tmp_path / "secret"
    path.write_text("s3cret\n")
    assert webhook_secret(parse("--webhook-secret-file", str(path))) == "s3cret"


def test_secret_from_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """IMAGEBOT_WEBHOOK_SECRET is used when set, and no secret at all means webhooks off."""
    monkeypatch.setenv("IMAGEBOT_WEBHOOK_SECRET", "from-env")
    assert webhook_secret(parse("--webhook-secret-file", str(tmp_path / "none"))) == "from-env"
    monkeypatch.delenv("IMAGEBOT_WEBHOOK_SECRET")
    assert webhook_secret(parse()) is None


def test_unreadable_or_empty_secret_file_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A secret file that is missing or empty stops start-up with its path in the message."""
    monkeypatch.delenv("IMAGEBOT_WEBHOOK_SECRET", raising=False)
    with pytest.raises(ImagebotError, match="missing"):
        webhook_secret(parse("--webhook-secret-file", str(tmp_path / "missing")))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ImagebotError, match="empty is empty"):
        webhook_secret(parse("--webhook-secret-file", str(tmp_path / "empty")))


def test_bad_listen_address_is_a_usage_error(tmp_path: Path) -> None:
    """`--listen` without a port exits 2 with the expected form."""
    result = run_cli("serve", "--listen", "localhost", "--policies", str(tmp_path))
    assert result.returncode == 2
    assert "expected HOST:PORT" in result.stderr


def test_leader_election_outside_a_pod_fails_clearly(tmp_path: Path) -> None:
    """`--leader-elect` without the Kubernetes environment exits 1 naming what is missing."""
    result = run_cli(
        "serve", "--leader-elect", "--listen", "127.0.0.1:0", "--policies", str(tmp_path),
        env={"KUBERNETES_SERVICE_HOST": ""},
    )  # fmt: skip
    assert result.returncode == 1
    assert "KUBERNETES_SERVICE_HOST" in result.stderr


def test_a_port_in_use_is_an_error_naming_the_address(tmp_path: Path) -> None:
    """When the listen address is taken, serve exits 1 saying which address and why."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = run_cli("serve", "--listen", address, "--policies", str(tmp_path))
    assert result.returncode == 1
    assert f"error: --listen {address}: Address already in use" in result.stderr
