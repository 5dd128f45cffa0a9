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

from ogshot.core.errors import InvalidParameter, TemplateError
from ogshot.core.suggest import closest, did_you_mean
from ogshot.templates.budgets import BUDGET_PARAM, check_budget
from ogshot.templates.fields import PARAM_NAME_RE, RESERVED_PARAMS, TYPES, Param
from ogshot.templates.variants import MAX_VARIANTS, VARIABLE, VARIANT_NAME_RE, Variants

__all__ = [
    "DECLARATION",
    "DEFAULT_SIZE",
    "SCALE_RANGE",
    "SIZE_RANGE",
    "Declaration",
    "Size",
    "parse_declaration",
    "read_declaration",
]

DECLARATION = re.compile(r"^\s*\{#-?\s*ogshot\b(.*?)-?#\}", re.DOTALL)
_TOP_KEYS = (
    "description",
    "width",
    "height",
    "scale",
    "params",
    "variants",
    "tailwind",
    BUDGET_PARAM,
)
_VARIANT_KEYS = ("weight", "description")
SIZE_RANGE = (200, 4096)  # CSS pixels, each side
SCALE_RANGE = (1, 3)  # device pixels per CSS pixel


@dataclasses.dataclass(frozen=True)
class Size:
    """The image a template makes: its viewport in CSS pixels and its device scale factor (the
    PNG is ``width * scale`` by ``height * scale``)."""

    width: int
    height: int
    scale: float = 1.0

    @property
    def pixels(self) -> tuple[int, int]:
        return round(self.width * self.scale), round(self.height * self.scale)

    def __str__(self) -> str:
        return f"{self.width}x{self.height}@{self.scale:g}"


DEFAULT_SIZE = Size(1200, 630)
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


@dataclasses.dataclass(frozen=True)
class Declaration:
    description: str = ""
    params: dict[str, Param] = dataclasses.field(default_factory=dict)
    variants: Variants | None = None
    size: Size = DEFAULT_SIZE
    tailwind: bool = False  # compile the utility classes the template uses (tailwind.py)
    max_kb: int | None = None  # the default byte budget (budgets.py); a URL's max_kb wins


def parse_declaration(
    name: str, source: str, default: Size = DEFAULT_SIZE
) -> tuple[str, dict[str, Param], Size]:
    """A template's source -> (description, parameters by name, image size); TemplateError on a
    mistake. ``default``: the size of a template that declares none (the settings' size)."""
    declared = read_declaration(name, source, default)
    return declared.description, declared.params, declared.size


def read_declaration(name: str, source: str, default: Size = DEFAULT_SIZE) -> Declaration:
    """A template's source -> its whole declaration; TemplateError on a mistake."""
    match = DECLARATION.match(source)
    if not match:
        return Declaration(size=default)
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
    variants = _variants(block, data["variants"], params) if "variants" in data else None
    tailwind = data.get("tailwind", False)
    if not isinstance(tailwind, bool):
        line = block.line_of("tailwind")
        raise block.error(f"tailwind must be true or false, got {tailwind!r}", line)
    max_kb = None
    if BUDGET_PARAM in data:
        try:
            declared = data[BUDGET_PARAM]
            if not isinstance(declared, int):  # TOML text would be taken by check_budget
                raise InvalidParameter(BUDGET_PARAM, f"must be an integer, got {declared!r}")
            max_kb = check_budget(declared)
        except InvalidParameter as exc:
            reason = exc.message.split(": ", 1)[-1]
            raise block.error(f"{BUDGET_PARAM}: {reason}", block.line_of(BUDGET_PARAM)) from None
    size = _size(block, data, default)
    return Declaration(description, params, variants, size, tailwind, max_kb)


def _variants(block: _Block, spec: Any, params: dict[str, Param]) -> Variants:
    top = block.line_of("variants")
    if not isinstance(spec, dict):
        raise block.error("variants must be a table ([variants], by = and [variants.NAME])", top)
    by = spec.get("by")
    if by is None:
        raise block.error(
            'variants: by is required: the parameter whose value picks the variant (by = "slug")',
            top,
        )
    by_line = block.line_in_table("variants", "by") or top
    if not isinstance(by, str):
        raise block.error(f"variants: by must be a string (a parameter name), got {by!r}", by_line)
    if by not in params:
        declared = ", ".join(params) or "none"
        raise block.error(
            f"variants: by = {by!r} is not a declared parameter{_near(by, params)} "
            f"(declared: {declared})",
            by_line,
        )
    if VARIABLE in params:
        raise block.error(
            f"params.{VARIABLE}: the name {VARIABLE!r} is given to the template by [variants]",
            block.line_of(VARIABLE, param=True),
        )
    names: list[str] = []
    weights: list[float] = []
    for vname, entry in spec.items():
        if vname == "by":
            continue
        line = block.table_line("variants", vname) or top
        where = f"variants.{vname}"
        if not isinstance(entry, dict):
            raise block.error(f"{where} must be a table with a weight ([{where}] weight = 1)", line)
        if not VARIANT_NAME_RE.match(vname):
            raise block.error(
                f"{where}: not a valid variant name (lower-case letters, digits, - and _; "
                "up to 32 characters)",
                line,
            )
        for key in entry:
            if key not in _VARIANT_KEYS:
                near = _near(key, _VARIANT_KEYS)
                key_line = block.line_in_table(f"variants.{vname}", key) or line
                raise block.error(f"{where}: unknown key {key!r}{near}", key_line)
        weight = entry.get("weight")
        weight_line = block.line_in_table(f"variants.{vname}", "weight") or line
        if weight is None:
            raise block.error(f"{where}: weight is required (a number >= 0)", line)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise block.error(f"{where}: weight must be a number >= 0, got {weight!r}", weight_line)
        if weight == float("inf"):
            raise block.error(f"{where}: weight must be finite", weight_line)
        names.append(vname)
        weights.append(float(weight))
    if len(names) < 2:
        raise block.error("variants: declare at least two ([variants.a], [variants.b])", top)
    if len(names) > MAX_VARIANTS:
        raise block.error(f"variants: at most {MAX_VARIANTS} variants, got {len(names)}", top)
    if sum(weights) <= 0:
        raise block.error("variants: at least one weight must be above 0", top)
    return Variants(by=by, names=tuple(names), weights=tuple(weights))


def _size(block: _Block, data: dict[str, Any], default: Size) -> Size:
    """``width``/``height`` (CSS pixels) and ``scale`` from the block; the default for any left
    out. Sizes never come from a request: a template decides its own."""
    low, high = SIZE_RANGE
    for key in ("width", "height"):
        value = data.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high
        ):
            line = block.line_of(key)
            raise block.error(f"{key} must be a whole number of pixels {low}..{high}", line)
    scale = data.get("scale")
    if scale is not None and (
        not isinstance(scale, (int, float))
        or isinstance(scale, bool)
        or not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]
    ):
        line = block.line_of("scale")
        raise block.error(f"scale must be a number {SCALE_RANGE[0]}..{SCALE_RANGE[1]}", line)
    return Size(
        width=data.get("width", default.width),
        height=data.get("height", default.height),
        scale=float(scale) if scale is not None else default.scale,
    )


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
            "version, max_kb: the byte budget); choose another name",
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
    close = closest(word, options)
    return f" ({did_you_mean(close)})" if close else ""


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
            found = self._row_in_table(f"params.{param}", key) or self._find(
                rf"(params\s*\.\s*)?{_quoted(param)}\s*\.\s*{_quoted(key)}\s*="
            )
            if found is None:  # an inline table: the line that names the parameter
                found = self._find(rf"{_quoted(param)}\s*=\s*\{{.*\b{re.escape(key)}\b")
            if found is None:
                return self.line_of(param, param=True)
        else:
            found = self._find(rf"{_quoted(key)}\s*(=|\.)") or self._find(rf"\[\s*{_quoted(key)}")
        return self.first + (found or 0)

    def table_line(self, table: str, name: str) -> int | None:
        """The file line of the header ``[table.name]``."""
        found = self._find(rf"\[\s*{_dotted(table)}\s*\.\s*{_quoted(name)}\s*\]")
        return None if found is None else self.first + found

    def line_in_table(self, table: str, key: str) -> int | None:
        """The file line of ``key = ...`` under the header ``[table]``."""
        found = self._row_in_table(table, key)
        return None if found is None else self.first + found

    def _row_in_table(self, table: str, key: str) -> int | None:
        """The block's row of ``key = ...`` under the header ``[table]``."""
        header = self._find(rf"\[\s*{_dotted(table)}\s*\]")
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


def _dotted(table: str) -> str:
    """A dotted TOML table name as written (``variants.dark``), each part bare or quoted."""
    return r"\s*\.\s*".join(_quoted(part) for part in table.split("."))


def _quoted(key: str) -> str:
    """A TOML key as written: bare, or in double or single quotes."""
    escaped = re.escape(key)
    return rf"(?:{escaped}|\"{escaped}\"|'{escaped}')"
