"""What provisioner's conformance suite needs to run against this connector's emulator."""

from __future__ import annotations

from importlib.resources import files

from provisioner.testing import Testkit

TOKEN = "example-directory-kit-token-6d0f"


def _start():
    from .emulator import ExampleDirectoryEmulator
    return ExampleDirectoryEmulator(TOKEN).start()


def testkit() -> Testkit:
    return Testkit(
        type="example_directory",
        start=_start,
        settings=lambda url: {"base_url": url, "token": "env:EXAMPLE_DIRECTORY_TOKEN", "page_size": 2},
        env={"EXAMPLE_DIRECTORY_TOKEN": TOKEN},
        mapping=(files(__package__) / "mapping.toml").read_text(encoding="utf-8"),
        create_request=("POST", r"/api/v1/users\Z"),
        page_size=2)
