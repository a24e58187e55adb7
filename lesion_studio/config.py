"""Typed configs from YAML or TOML files: dataclasses with unknown-key and type checks.

Every trainer config is a dataclass; it is saved next to every checkpoint (as YAML) so a model
always carries the exact settings that made it.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

from lesion_studio.errors import ConfigError
from lesion_studio.files import atomic_write

T = TypeVar("T")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML (.yaml/.yml) or TOML (.toml) file into a dict, with readable errors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read the config file {path}: {exc.strerror}.") from exc
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else _load_yaml(text)
    except ConfigError as exc:
        raise ConfigError(f"{path.name}, {exc}") from None
    except Exception as exc:  # yaml.YAMLError / tomllib.TOMLDecodeError
        raise ConfigError(f"{path.name} is not valid {'TOML' if path.suffix == '.toml' else 'YAML'}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name} must hold a mapping of settings at the top level.")
    return data


#: Numbers in exponent form without a dot (``3e-4``, ``1E5``): floats in YAML 1.2, JSON, TOML and
#: Python, text to PyYAML's YAML 1.1 rules (which want ``3.0e-4``).
_EXPONENT_FLOAT = r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping, and reads ``3e-4`` as a number.

    Why: YAML's own loaders keep the last of two equal keys without a word, so a config that sets
    ``seeds`` twice runs with whichever came last; TOML already refuses this, and so does this.
    And PyYAML reads ``lr: 3e-4`` as the text "3e-4" (YAML 1.1 wants a dot in a float), so the
    way a researcher writes a learning rate was refused as "not a number".
    """
    import re

    import yaml

    class _UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise ConfigError(f"line {key_node.start_mark.line + 1}: the setting {key!r} is given twice "
                                      "in the same section; keep one.")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    # tried after YAML 1.1's own int and float patterns, so "3", "0.5" and "1_000" read as before
    _UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(_EXPONENT_FLOAT),
                                           list("-+0123456789."))
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def write_config_file(path: str | Path, data: dict[str, Any]) -> None:
    import yaml

    atomic_write(Path(path), yaml.safe_dump(data, sort_keys=False).encode())


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, not {type(data).__name__}.")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(sorted(unknown))}. Known: {', '.join(sorted(fields))}."
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _describe(hint: Any) -> str:
    """How an error message names what a type hint accepts ("true or false", "'auto'", ...)."""
    if typing.get_origin(hint) is typing.Literal:
        return " or ".join(map(repr, typing.get_args(hint)))
    return {bool: "true or false", int: "a whole number", float: "a number", str: "text"}.get(
        hint, getattr(hint, "__name__", str(hint)))


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where=where)  # type: ignore[arg-type]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, where)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(errors) > 1:
            choices = " or ".join(_describe(a) for a in args if a is not type(None))
            raise ConfigError(f"{where} must be {choices}, not {value!r}.")
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}.")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, not {value!r}.")
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping.")
        return dict(value)
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, args))}, not {value!r}.")
        return value
    if hint is Any:
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, not {value!r}.")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, not {value!r}.")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {value!r}.")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be text, not {value!r}.")
        return value
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain data (tuples become lists) for YAML/JSON."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))
