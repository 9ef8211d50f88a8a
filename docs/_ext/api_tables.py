"""MkDocs hook: generate the API overview tables from the installed packages.

The overview page lists every public name of every cc module, and the
``cc.concurrency`` page lists what the meta-package re-exports. Written by
hand, both would fall behind the packages; this hook builds them from each
module's ``__all__`` and the first line of each docstring whenever the site
is built. A page asks for a table with a marker line:

* ``<!-- cc:api-table cc.queues -->``: the public names of one module;
* ``<!-- cc:reexports -->``: the names of ``cc.concurrency``, each with the
  module that defines it.

It is registered under ``hooks:`` in ``mkdocs.yml``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

MODULES = ("cc.primitives", "cc.queues", "cc.locks", "cc.redis", "cc.core_helpers")
_MARKER = re.compile(r"^<!-- cc:(api-table (?P<module>[\w.]+)|reexports) -->$", re.M)
# A role: its explicit title ("title <target>") or the target's last part.
_ROLE = re.compile(
    r":(?:py:)?[a-z]+:`~?(?:(?P<title>[^`<]+?)\s*<[^`>]+>|(?:[\w.]+\.)?(?P<name>[^`.]+))`"
)


def summary(obj: object) -> str:
    """Return the first line of ``obj``'s docstring, as Markdown."""
    if not (inspect.isclass(obj) or inspect.isroutine(obj)):
        # A type alias: its own docstring is typing's, so show what it is.
        return f"type alias of `{repr(obj).replace('typing.', '')}`"
    doc = inspect.getdoc(obj) or ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    first = _ROLE.sub(lambda m: f"`{m['title'] or m['name']}`", first)
    return first.replace("``", "`").replace("|", "\\|")


def api_table(module_name: str) -> str:
    """Return a Markdown table of the public names of ``module_name``."""
    module = importlib.import_module(module_name)
    rows = ["| name | what it is |", "| --- | --- |"]
    for name in module.__all__:
        obj = getattr(module, name)
        label = f"`{name}()`" if inspect.isroutine(obj) else f"`{name}`"
        rows.append(f"| [{label}][{module_name}.{name}] | {summary(obj)} |")
    return "\n".join(rows)


def reexports_table() -> str:
    """Return a Markdown table of ``cc.concurrency``'s names and their homes."""
    meta = importlib.import_module("cc.concurrency")
    homes = {
        name: module_name
        for module_name in MODULES
        for name in importlib.import_module(module_name).__all__
    }
    rows = ["| name | defined in | what it is |", "| --- | --- | --- |"]
    for name in meta.__all__:
        if name == "__version__":
            continue
        home = homes.get(name)
        if home is None:
            raise ValueError(f"cc.concurrency.{name} is not public in any cc module")
        obj = getattr(meta, name)
        rows.append(
            f"| [`{name}`][{home}.{name}] | [`{home}`][{home}] | {summary(obj)} |"
        )
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace each marker line of a page by its generated table."""

    def table(match: re.Match[str]) -> str:
        module = match.group("module")
        return api_table(module) if module else reexports_table()

    return _MARKER.sub(table, markdown)
