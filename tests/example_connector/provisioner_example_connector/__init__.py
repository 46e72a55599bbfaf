"""An example external connector: "example_directory", a tiny REST user directory.

Everything provisioner needs to know about the vendor is in this package; the one line
in pyproject.toml's "provisioner.connectors" entry points registers it. Importing this
module stays cheap (settings only): the target, the emulator and the testkit are named
as "module:attr" and imported when used.
"""

from __future__ import annotations

from provisioner.connectors import Connector, SandboxSpec

from .settings import ExampleDirectorySandboxSettings, ExampleDirectorySettings


def _open(name: str, settings: ExampleDirectorySettings, paths: list[str]):
    from .target import ExampleDirectoryTarget
    return ExampleDirectoryTarget(
        name, settings.base_url, paths=paths, token=settings.token, page_size=settings.page_size,
        timeout=settings.timeout, tls_verify=settings.tls_verify, ca_file=settings.ca_file,
        rate_limit=settings.rate_limit)


connector = Connector(
    type="example_directory",
    summary="Example directory: a tiny REST user API (an external connector package)",
    settings=ExampleDirectorySettings,
    target="provisioner_example_connector.target:ExampleDirectoryTarget",
    open=_open,
    default_mapping="mapping.toml",
    docs="README.md",
    sandbox=SandboxSpec(settings=ExampleDirectorySandboxSettings,
                        build="provisioner_example_connector.emulator:build"),
    testkit="provisioner_example_connector.testkit:testkit",
)
