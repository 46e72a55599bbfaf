"""Reading the files a person points the tool at, with one-sentence errors."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from .errors import ConfigError
from .secrets import redact


def read_input(path: Path, shown: str, kind: str) -> bytes:
    """The file's bytes, or ConfigError naming it as `shown` and saying what it should be."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{shown}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{shown}: is a directory, not a {kind}") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read the {kind}: {exc.strerror}") from None


def load_toml(path: Path, shown: str, kind: str) -> dict:
    """Parse a TOML file; mistakes become ConfigError with the line to look at."""
    data = read_input(path, shown, kind)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{shown}: line {line}: invalid TOML: the file is not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if at:
            message = f"{message[:at.start()]} (column {at.group(2)})"
            line = int(at.group(1))
        else:
            message = re.sub(r"\s*\(at end of document\)$", " (at the end of the file)", message)
            line = text.count("\n") + 1
        raise ConfigError(redact(f"{shown}: line {line}: invalid TOML: {message}")) from None
