"""A griffe extension that turns the reST bits of cc's docstrings into Markdown.

cc writes Sphinx-style docstrings: ``:param:`` fields (which griffe's sphinx
parser understands), cross-reference roles such as ``:class:`Lock``` and
doctest examples (which it does not). Rendered as Markdown, a role would show
up verbatim and a ``>>>`` line would become a nested block quote. This
extension rewrites each docstring of the ``cc`` package once it is loaded:

* a role whose target is a public, documented cc object becomes an autorefs
  link (``[`Lock`][cc.primitives.Lock]``), so it points at its API entry;
  any other target (the standard library, anyio, private modules) becomes
  inline code; a role with an explicit title
  (``:meth:`from_config <cc.queues.WorkQueue.from_config>```) shows the
  title and links to the target;
* each doctest example becomes a fenced ``pycon`` code block;
* a module attribute without a docstring gets the text of the Sphinx
  ``#:`` comment above it, if it has one (type aliases are documented so).

It is loaded by mkdocstrings (``extensions:`` in ``mkdocs.yml``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(class|meth|func|attr|data|mod|exc|obj):`(~?)([^`]+)`")
_CALLABLE_ROLES = frozenset({"meth", "func"})
_TITLED = re.compile(r"(?P<title>[^<]+?)\s*<(?P<target>[^<>]+)>", re.DOTALL)
_PROMPT = re.compile(r"^(\s*)>>>( |$)")


def _public_package(obj: griffe.Object) -> str:
    """Return the public ``cc.<name>`` package that ``obj`` belongs to."""
    return ".".join(obj.path.split(".")[:2])


def _enclosing_class(obj: griffe.Object) -> griffe.Object | None:
    current: griffe.Object | None = obj
    while current is not None and not current.is_class:
        current = current.parent
    return current


class SphinxMarkup(griffe.Extension):
    """Rewrite roles and doctest examples in every docstring of ``cc``."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite the docstrings of the whole ``cc`` tree once it is loaded."""
        if pkg.name != "cc":
            return
        self._root = pkg
        self._rewrite_tree(pkg)

    def _rewrite_tree(self, obj: griffe.Object) -> None:
        if obj.docstring is None and obj.is_attribute:
            comment = _doc_comment(obj)
            if comment:
                obj.docstring = griffe.Docstring(comment, parent=obj)
        if obj.docstring is not None:
            text = _fence_doctests(obj.docstring.value)
            obj.docstring.value = _ROLE.sub(
                lambda match: self._replace_role(obj, match), text
            )
        for member in obj.members.values():
            if not isinstance(member, griffe.Alias):  # its target is rewritten
                self._rewrite_tree(member)

    def _replace_role(self, context: griffe.Object, match: re.Match[str]) -> str:
        role, tilde, target = match.groups()
        target = target.strip()
        titled = _TITLED.fullmatch(target)
        if titled:
            display, target = titled["title"].strip(), titled["target"].strip()
        else:
            display = target.rsplit(".", 1)[-1] if tilde else target
        if role in _CALLABLE_ROLES and not display.endswith(")"):
            display += "()"
        identifier = self._resolve(context, target)
        if identifier is None:
            return f"`{display}`"
        return f"[`{display}`][{identifier}]"

    def _resolve(self, context: griffe.Object, target: str) -> str | None:
        """Return the public path of ``target`` seen from ``context``, if documented."""
        candidates = []
        if target.startswith("cc."):
            candidates.append(target)
        cls = _enclosing_class(context)
        if cls is not None:
            public_class = f"{_public_package(cls)}.{cls.name}"
            candidates.append(f"{public_class}.{target}")
        candidates.append(f"{_public_package(context)}.{target}")
        for candidate in candidates:
            if self._is_documented(candidate):
                return candidate
        return None

    def _is_documented(self, path: str) -> bool:
        """Whether ``path`` is a public name that the API pages render."""
        parts = path.split(".")
        if parts[0] != "cc" or any(part.startswith("_") for part in parts[1:]):
            return False
        try:
            obj: Any = self._root.get_member(parts[1:])
        except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            return False
        try:
            return bool(obj.has_docstring)
        except (griffe.AliasResolutionError, griffe.CyclicAliasError):
            return False


def _doc_comment(obj: griffe.Object) -> str:
    """Return the ``#:`` comment lines right above ``obj``'s definition."""
    if obj.lineno is None:
        return ""
    try:
        source = obj.module.lines  # the whole file: line numbers are absolute
    except (OSError, KeyError, ValueError):
        return ""
    found: list[str] = []
    index = min(obj.lineno - 2, len(source) - 1)
    while index >= 0 and source[index].lstrip().startswith("#:"):
        found.insert(0, source[index].lstrip()[2:].strip())
        index -= 1
    return " ".join(found)


def _fence_doctests(text: str) -> str:
    """Wrap each run of doctest lines (up to a blank line) in a pycon fence."""
    out: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = _PROMPT.match(lines[index])
        if match is None:
            out.append(lines[index])
            index += 1
            continue
        indent = match.group(1)
        if out and out[-1].strip():
            out.append("")
        out.append(f"{indent}```pycon")
        while index < len(lines) and lines[index].strip():
            out.append(lines[index])
            index += 1
        out.append(f"{indent}```")
    return "\n".join(out)
