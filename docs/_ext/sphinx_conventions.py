"""A griffe extension for the docs build: reads colorkit's docstrings as they are written.

colorkit's docstrings follow Google style, plus three reStructuredText habits that
griffe leaves as plain text:

* ``#:`` comments above a module constant document it (``KINDS``, ``L_SCALE``, ...);
* roles such as ``:func:`build``` or ``:class:`~colorkit.recipe.Recipe``` name other
  objects;
* a paragraph ending in ``::`` introduces an indented literal block.

Comments become the constants' docstrings, a role becomes a cross-reference when its
target is rendered in the API reference (and a code span otherwise, so a strict build
never meets a dangling link), and ``::`` becomes ``:``. The source files are not touched.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import griffe

# the modules rendered by docs/reference/*.md; a link to anything outside them would dangle
RENDERED_MODULES = frozenset(
    match.group(1)
    for page in (Path(__file__).parent.parent / "reference").glob("*.md")
    for match in re.finditer(r"^::: ([\w.]+)", page.read_text(encoding="utf-8"), re.MULTILINE)
)

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj|const):`(~?)([^`<>]+)`")
_LITERAL_INTRO = re.compile(r"(\S)::[ \t]*$", re.MULTILINE)
_BARE_LITERAL_INTRO = re.compile(r"^[ \t]*::[ \t]*$", re.MULTILINE)


_ONE_LINE_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*\s*(:[^=]+)?=\s*\S")


def _comment_above(lines: list[str], lineno: int) -> str | None:
    """The ``#:`` comment block directly above line ``lineno`` (1-based), if any.

    One-line constant assignments stacked right under such a comment share it
    (``L_SCALE = 50.0`` and ``AB_SCALE = 110.0`` under one comment naming both).
    """
    found: list[str] = []
    index = lineno - 2
    while index >= 0 and _ONE_LINE_ASSIGNMENT.match(lines[index]):
        index -= 1
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        found.append(lines[index].lstrip()[2:].strip())
        index -= 1
    return "\n".join(reversed(found)) if found else None


class SphinxConventions(griffe.Extension):
    """Turn ``#:`` comments into docstrings and Sphinx roles into cross-references."""

    def __init__(self) -> None:
        super().__init__()
        self._sources: dict[Path, list[str]] = {}

    def _lines(self, path: Path) -> list[str]:
        if path not in self._sources:
            self._sources[path] = path.read_text(encoding="utf-8").splitlines()
        return self._sources[path]

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        if attr.docstring is not None or attr.lineno is None:
            return
        filepath = attr.filepath
        if not isinstance(filepath, Path) or not filepath.is_file():
            return
        text = _comment_above(self._lines(filepath), attr.lineno)
        if text:
            attr.docstring = griffe.Docstring(text, lineno=attr.lineno - 1, parent=attr)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != "colorkit":
            return
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = self._rewrite(obj.docstring.value, obj, pkg)

    def _rewrite(self, text: str, obj: griffe.Object, pkg: griffe.Module) -> str:
        def replace(match: re.Match[str]) -> str:
            short, name = match.group(1) == "~", match.group(2).strip()
            shown = name.rsplit(".", 1)[-1] if short else name
            target = _resolve(name, obj, pkg)
            if target is not None and _rendered(target):
                return f"[`{shown}`][{target.path}]"
            return f"`{shown}`"

        text = _ROLE.sub(replace, text)
        text = _LITERAL_INTRO.sub(r"\1:", text)
        return _BARE_LITERAL_INTRO.sub("", text)


def _walk(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias:
            found.extend(_walk(member))
    return found


def _follow(member: Any, pkg: griffe.Module) -> griffe.Object | None:
    """The object behind a member, following aliases by path inside colorkit only."""
    seen = 0
    while member is not None and member.is_alias and seen < 10:
        member = _lookup(member.target_path, pkg)
        seen += 1
    return None if member is None or member.is_alias else member


def _lookup(path: str, pkg: griffe.Module) -> griffe.Object | None:
    parts = path.split(".")
    if parts[0] != pkg.name:
        return None
    current: Any = pkg
    for part in parts[1:]:
        current = _follow(current, pkg)
        if current is None or part not in current.members:
            return None
        current = current.members[part]
    return _follow(current, pkg)


def _resolve(name: str, obj: griffe.Object, pkg: griffe.Module) -> griffe.Object | None:
    """Resolve a role's target as Sphinx would: absolute, then from the enclosing scopes."""
    if name.startswith(pkg.name + "."):
        return _lookup(name, pkg)
    head, _, rest = name.partition(".")
    scope: Any = obj
    while scope is not None:
        if head in scope.members:
            target = _follow(scope.members[head], pkg)
            if target is None:
                return None
            return _lookup(f"{target.path}.{rest}", pkg) if rest else target
        scope = scope.parent
    return None


def _rendered(target: griffe.Object) -> bool:
    """Whether the API reference renders ``target`` (so a link to it resolves)."""
    if target.is_module:
        return target.path in RENDERED_MODULES
    if target.module.path not in RENDERED_MODULES or target.docstring is None:
        return False
    current: Any = target
    while current is not None and not current.is_module:
        if current.name.startswith("_") or not current.is_public:
            return False
        current = current.parent
    return True
