"""Jinja's compile errors, said for what they are.

Jinja calls an unknown filter a TemplateSyntaxError, and reports a block left open at the end of
the file, where nothing is wrong. Here the first is "unknown filter" (with the near miss), and the
second points at the line where the block opens.
"""

from __future__ import annotations

import os
import re

import jinja2

from ogshot.core.suggest import closest, did_you_mean

__all__ = ["syntax_error_message", "unclosed_block"]

_UNKNOWN = re.compile(r"No (filter|test) named '([^']*)'")
_STRAY = re.compile(r"Encountered unknown tag '([^']*)'")
_INNERMOST = re.compile(r"innermost block that needs to be closed is '([^']*)'")
# Tags that open a block closed by ``end<tag>`` (``set`` only in its block form).
_BLOCKS = frozenset(
    {"if", "for", "block", "macro", "call", "filter", "with", "autoescape", "set", "trans"}
)


def syntax_error_message(
    exc: jinja2.TemplateSyntaxError, env: jinja2.Environment, template: str
) -> tuple[str, int | None]:
    """(message, line) for a template that does not compile."""
    where = os.path.basename(exc.filename or exc.name or f"{template}.html")
    unknown = _UNKNOWN.search(exc.message or "")
    if isinstance(exc, jinja2.TemplateAssertionError) and unknown:
        kind, name = unknown.groups()
        known = env.filters if kind == "filter" else env.tests
        close = closest(name, known)
        near = f" ({did_you_mean(close)})" if close else ""
        return f"unknown {kind} {name!r} in {where} line {exc.lineno}{near}", exc.lineno
    message = exc.message or ""
    if "Unexpected end of template" in message:
        opened = unclosed_block(_source(exc, env), env, _innermost(message))
        if opened is not None:
            tag, line = opened
            return (
                f"unclosed {{% {tag} %}} in {where}: opened at line {line} and never closed "
                f"(expected {{% end{tag} %}})",
                line,
            )
    stray = _STRAY.search(message)
    if stray and _innermost(message):
        opened = unclosed_block(_source(exc, env), env, _innermost(message), exc.lineno)
        if opened is not None:
            tag, line = opened
            return (
                f"unclosed {{% {tag} %}} in {where}: opened at line {line}, still open at the "
                f"{{% {stray.group(1)} %}} of line {exc.lineno} (expected {{% end{tag} %}} first)",
                line,
            )
    return f"syntax error in {where} line {exc.lineno}: {exc.message}", exc.lineno


def unclosed_block(
    source: str | None,
    env: jinja2.Environment,
    tag: str | None = None,
    before: int | None = None,
) -> tuple[str, int] | None:
    """(tag, line) of the innermost block still open at the end of ``source``, or before line
    ``before`` (of ``tag``, when given); None when every block is closed or the source does not
    tokenize."""
    if source is None:
        return None
    stack: list[tuple[str, int]] = []
    try:
        tokens = [
            t for t in env.lex(source) if t[1] != "whitespace" and (before is None or t[0] < before)
        ]
    except jinja2.TemplateSyntaxError:
        return None
    for index, (line, kind, _value) in enumerate(tokens[:-1]):
        if kind != "block_begin" or tokens[index + 1][1] != "name":
            continue
        name = tokens[index + 1][2]
        if name in _BLOCKS and not (name == "set" and _assigns(tokens, index + 2)):
            stack.append((name, line))
        elif name.startswith("end"):
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth][0] == name[3:]:
                    del stack[depth:]
                    break
    for name, line in reversed(stack):
        if tag is None or name == tag:
            return name, line
    return None


def _assigns(tokens: list[tuple[int, str, str]], start: int) -> bool:
    """Whether the ``set`` tag starting at ``start`` has ``=`` (then it is not a block)."""
    for _line, kind, value in tokens[start:]:
        if kind == "block_end":
            return False
        if kind == "operator" and value == "=":
            return True
    return False


def _innermost(message: str) -> str | None:
    found = _INNERMOST.search(message)
    return found.group(1) if found else None


def _source(exc: jinja2.TemplateSyntaxError, env: jinja2.Environment) -> str | None:
    if exc.source is not None:
        return exc.source
    if exc.name and env.loader is not None:
        try:
            return env.loader.get_source(env, exc.name)[0]
        except jinja2.TemplateNotFound:
            return None
    return None
