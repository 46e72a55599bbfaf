"""The mappings the project ships, by the name a test config gives them: mappings/directory.toml
(the built-in example) and each connector's default mapping (a file in its package)."""

from __future__ import annotations

from pathlib import Path

from provisioner.connectors import connector

REPO = Path(__file__).resolve().parent.parent


def default_mapping(kind: str) -> Path:
    """The default mapping the connector of this type ships."""
    return Path(str(connector(kind).mapping_file()))


def shipped_mapping(file_name: str) -> Path:
    """"directory.toml" or "<type>.toml" -> the shipped file."""
    local = REPO / "mappings" / file_name
    return local if local.exists() else default_mapping(Path(file_name).stem)
