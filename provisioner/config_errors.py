"""pydantic's validation errors -> one sentence per problem, each naming the file,
the dotted key and, where it can be found, the line and column."""

from __future__ import annotations

import difflib
from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from .errors import ConfigError
from .files import key_position
from .secrets import redact
from .target_settings import TARGET_NAME, _show

# values of these keys are secrets: never echo what was written there
SECRET_KEYS = frozenset({"token", "password", "client_secret", "subscription_key", "api_key",
                         "secret_key", "admin_password"})


def config_error(name: str, exc: ValidationError, text: str) -> ConfigError:
    lines = []
    for loc, problem in _problems(exc):
        at = key_position(text, loc) if loc else None
        lines.append(f"{name}: {problem}" + (f" (line {at[0]}, column {at[1]})" if at else ""))
    return ConfigError(redact("\n".join(lines)))



_TYPE_WORDS = {
    "string_type": "must be a string",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "path_type": "must be a file path",
    "is_instance_of": "has the wrong type",
}


def _known_types(union: Any) -> list[str]:
    members = get_args(get_args(union)[0]) or (get_args(union)[0],)
    return [tag for model in members for tag in get_args(model.model_fields["type"].annotation)]


def _key(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        part = str(part)
        part = part if TARGET_NAME.fullmatch(part) else '"' + part.replace('"', '\\"') + '"'
        out += f".{part}" if out else part
    return out


def _known_keys(loc: list[Any]) -> list[str]:
    """The keys the table at pydantic's `loc` (union tags included) accepts, for a "did you mean"."""
    from .config import Settings
    annotation: Any = Settings
    for part in [*loc, None]:
        while True:  # Annotated[X, ...] -> X; X | None -> X
            args = get_args(annotation)
            if hasattr(annotation, "__metadata__"):
                annotation = args[0]
            elif args and type(None) in args and len(args) == 2:
                annotation = next(a for a in args if a is not type(None))
            else:
                break
        if part is None:
            break
        args = get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part)) or next(
                (f for f in annotation.model_fields.values() if f.alias == part), None)
            if field is None:
                return []
            annotation = field.annotation
        elif args and all(isinstance(a, type) and issubclass(a, BaseModel) for a in args):
            annotation = next((m for m in args if part in get_args(m.model_fields["type"].annotation)), None)
        elif args:  # dict[str, X] or list[X]: the name or index leads to an X
            annotation = args[-1]
        else:
            return []
    if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
        return []
    return [f.alias or name for name, f in annotation.model_fields.items()]


def _problems(exc: ValidationError) -> list[tuple[list, str]]:
    """(where in the file, the sentence) for each mistake pydantic found."""
    from .config import SourceSettings, TargetSettings
    problems = []
    for error in exc.errors(include_url=False):
        loc = list(error["loc"])
        # tagged unions put the member's tag into the location: drop it
        if loc[:1] == ["source"] and len(loc) > 1 and loc[1] in _known_types(SourceSettings):
            del loc[1]
        if loc[:1] == ["sources"] and len(loc) > 2 and loc[2] in _known_types(SourceSettings):
            del loc[2]
        if loc[:1] == ["targets"] and len(loc) > 2 and loc[2] in _known_types(TargetSettings):
            del loc[2]
        kind, value = error["type"], error.get("input")

        if kind == "extra_forbidden":
            where, text = _key(loc[:-1]), f"unknown key {str(loc[-1])!r}"
            close = difflib.get_close_matches(str(loc[-1]), _known_keys(list(error["loc"][:-1])), n=1)
            if close:
                text += f"; did you mean {close[0]!r}?"
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            what, union = (("source", SourceSettings) if loc[0] in ("source", "sources")
                           else ("target", TargetSettings))
            known = ", ".join(_known_types(union))
            where = _key(loc + ["type"])
            if kind == "union_tag_invalid":
                text = f"unknown {what} type {_show(value.get('type'))} (known: {known})"
            else:
                text = f"is required (known: {known})"
        elif kind == "missing":
            where = _key(loc)
            text = f"the [{loc[0]}] table is missing" if len(loc) == 1 else "is required"
        elif kind == "value_error":
            where, text = _key(loc), str(error["ctx"]["error"])
        else:
            where = _key(loc)
            if kind == "literal_error":
                text = f"must be {error['ctx']['expected']}"
            else:
                text = _TYPE_WORDS.get(kind) or error["msg"][:1].lower() + error["msg"][1:]
            if not SECRET_KEYS.intersection(map(str, loc)) and not isinstance(value, (dict, list)):
                text += f", got {_show(value)}"
        problems.append((loc, f"{where}: {text}" if where else text))
    return problems
