"""The ``{#ogshot ... #}`` block at the top of a template: TOML that declares its parameters.

A mistake in it is a TemplateError that names the file, the line of the mistake in that file (not
the line of the block), and the near miss when there is one (``max_lenght``: did you mean
``max_length``?). tomllib reports positions for syntax errors only, so the line of a bad key or
value is found here, in the block's text.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
import tomllib
from typing import Any

from .errors import InvalidParameter, TemplateError
from .fields import PARAM_NAME_RE, RESERVED_PARAMS, TYPES, Param

__all__ = ["DECLARATION", "parse_declaration"]

DECLARATION = re.compile(r"^\s*\{#-?\s*ogshot\b(.*?)-?#\}", re.DOTALL)
_TOP_KEYS = ("description", "params")
# key -> the TOML value types it takes (bool is not a number here)
_PARAM_KEYS: dict[str, tuple[type, ...]] = {
    "type": (str,),
    "default": (str, int, float, bool, dt.date),
    "required": (bool,),
    "allow_empty": (bool,),
    "max_length": (int,),
    "min": (int, float),
    "max": (int, float),
    "choices": (list,),
    "description": (str,),
    "example": (str, int, float, bool, dt.date),
}
_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dt.date: "a date",
}
_TYPE_ALIASES = {
    "string": "str",
    "text": "str",
    "integer": "int",
    "number": "float",
    "double": "float",
    "boolean": "bool",
    "colour": "color",
    "datetime": "date",
    "uri": "url",
    "link": "url",
}
_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$")


def parse_declaration(name: str, source: str) -> tuple[str, dict[str, Param]]:
    """A template's source -> (description, parameters by name); TemplateError on a mistake."""
    match = DECLARATION.match(source)
    if not match:
        return "", {}
    block = _Block(name, match.group(1), source[: match.start(1)].count("\n") + 1)
    try:
        data = tomllib.loads(block.text)
    except tomllib.TOMLDecodeError as exc:
        position = _POSITION.search(str(exc))
        line = block.first + int(position.group(1)) - 1 if position else block.first
        reason = _POSITION.sub("", str(exc))
        raise block.error(f"invalid parameter declaration: {reason}", line) from None
    for key in data:
        if key not in _TOP_KEYS:
            raise block.error(f"unknown key {key!r}{_near(key, _TOP_KEYS)}", block.line_of(key))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise block.error("description must be a string", block.line_of("description"))
    specs = data.get("params") or {}
    if not isinstance(specs, dict):
        raise block.error("params must be a table ([params.NAME])", block.line_of("params"))
    params: dict[str, Param] = {}
    for pname, spec in specs.items():
        params[pname] = _param(block, pname, spec)
    return description, params


def _param(block: _Block, pname: str, spec: Any) -> Param:
    where = f"params.{pname}"
    if not isinstance(spec, dict):
        raise block.error(f"{where} must be a table", block.line_of(pname, param=True))
    if not PARAM_NAME_RE.match(pname):
        raise block.error(
            f"{where}: not a valid parameter name (letters, digits and _; not starting with "
            "a digit)",
            block.line_of(pname, param=True),
        )
    if pname in RESERVED_PARAMS:
        raise block.error(
            f"{where}: {pname!r} is reserved for every URL (s: the signature, v: the template "
            "version); choose another name",
            block.line_of(pname, param=True),
        )
    for key, value in spec.items():
        line = block.line_of(key, param=pname)
        if key not in _PARAM_KEYS:
            raise block.error(f"{where}: unknown key {key!r}{_near(key, _PARAM_KEYS)}", line)
        kinds = _PARAM_KEYS[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            wanted = " or ".join(_TYPE_NAMES[k] for k in kinds)
            raise block.error(f"{where}: {key} must be {wanted}, got {value!r}", line)
    kind = spec.get("type", "str")
    if kind not in TYPES:
        close = difflib.get_close_matches(kind.lower(), [*TYPES, *_TYPE_ALIASES], n=1)
        near = _TYPE_ALIASES.get(kind.lower()) or (close and _TYPE_ALIASES.get(close[0], close[0]))
        hint = f" (did you mean {near!r}?)" if near else ""
        raise block.error(
            f"{where}: unknown type {kind!r}{hint}; the types are {', '.join(TYPES)}",
            block.line_of("type", param=pname),
        )
    param = Param(
        name=pname,
        type=kind,
        default=spec.get("default"),
        required=spec.get("required", False),
        allow_empty=spec.get("allow_empty", False),
        max_length=spec.get("max_length"),
        min=spec.get("min"),
        max=spec.get("max"),
        choices=tuple(spec.get("choices", ())),
        description=spec.get("description", ""),
        example=spec.get("example"),
    )
    # A default must itself be valid, or every request that leaves it out fails; so must an
    # example, or the studio and the docs start from an error. The template receives the
    # default converted, as it would a value given in the request.
    converted: dict[str, Any] = {}
    for key in ("default", "example"):
        value = spec.get(key)
        if value is None:
            continue
        try:
            converted[key] = param.convert_value(value, global_max_length=1 << 20)
        except InvalidParameter as exc:
            reason = exc.message.split(": ", 1)[-1]
            line = block.line_of(key, param=pname)
            raise block.error(f"{where}: {key} {value!r} is not valid: {reason}", line) from None
    if "default" in converted:
        param = dataclasses.replace(param, default=converted["default"])
    if isinstance(param.example, dt.date):  # a TOML date: examples travel as text
        param = dataclasses.replace(param, example=param.example.isoformat())
    return param


def _near(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Block:
    """The declaration's TOML text and where it sits in the template file."""

    def __init__(self, name: str, text: str, first: int) -> None:
        self.name = name
        self.text = text
        self.first = first  # the file's line number of the block's first line
        self.lines = text.split("\n")

    def error(self, message: str, line: int) -> TemplateError:
        return TemplateError(
            f"{self.name}.html line {line}: {message}", template=self.name, line=line
        )

    def line_of(self, key: str, *, param: str | bool = False) -> int:
        """The file line of ``key``: a top-level key, the table of parameter ``key``
        (``param=True``), or ``key`` inside the table of parameter ``param``."""
        found = None
        if param is True:
            found = self._find(rf"\[\s*params\s*\.\s*{_quoted(key)}\s*\]") or self._find(
                rf"(params\s*\.\s*)?{_quoted(key)}\s*(\.|=)"
            )
        elif isinstance(param, str):
            found = self._key_in_table(param, key) or self._find(
                rf"(params\s*\.\s*)?{_quoted(param)}\s*\.\s*{_quoted(key)}\s*="
            )
            if found is None:  # an inline table: the line that names the parameter
                found = self._find(rf"{_quoted(param)}\s*=\s*\{{.*\b{re.escape(key)}\b")
            if found is None:
                return self.line_of(param, param=True)
        else:
            found = self._find(rf"{_quoted(key)}\s*(=|\.)") or self._find(rf"\[\s*{_quoted(key)}")
        return self.first + (found or 0)

    def _key_in_table(self, param: str, key: str) -> int | None:
        header = self._find(rf"\[\s*params\s*\.\s*{_quoted(param)}\s*\]")
        if header is None:
            return None
        for index in range(header + 1, len(self.lines)):
            line = self.lines[index]
            if re.match(r"\s*\[", line):
                break
            if re.match(rf"\s*{_quoted(key)}\s*=", line):
                return index
        return None

    def _find(self, pattern: str) -> int | None:
        regex = re.compile(rf"^\s*{pattern}")
        for index, line in enumerate(self.lines):
            if regex.match(line):
                return index
        return None


def _quoted(key: str) -> str:
    """A TOML key as written: bare, or in double or single quotes."""
    escaped = re.escape(key)
    return rf"(?:{escaped}|\"{escaped}\"|'{escaped}')"
