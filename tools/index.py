"""What a package index already holds: PEP 503 simple pages and file hashes.

twine's ``--skip-existing`` works only with some servers and never compares
content, so ``publish`` asks the index itself: the file names listed on each
project's simple page, with the ``#sha256=`` digest the page gives (or, when
it gives none, the file's own bytes).
"""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["compare", "files_on_index", "sha256"]

_LINK = re.compile(r'<a\s[^>]*href="([^"]+)"[^>]*>([^<]+)</a>', re.IGNORECASE)


def sha256(path: Path) -> str:
    """Return the hex SHA-256 digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_on_index(simple_url: str, projects: Iterable[str]) -> dict[str, str]:
    """Map each listed file name to its URL (with ``#sha256=``, if given)."""
    found: dict[str, str] = {}
    for project in projects:
        page_url = f"{simple_url.rstrip('/')}/{project}/"
        try:
            with urllib.request.urlopen(page_url, timeout=30) as page:
                html = page.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                continue
            raise
        for href, text in _LINK.findall(html):
            found[text.strip()] = urllib.parse.urljoin(page_url, href)
    return found


def _index_digest(url: str) -> str:
    fragment = urllib.parse.urlsplit(url).fragment
    if fragment.startswith("sha256="):
        return fragment.removeprefix("sha256=")
    with urllib.request.urlopen(url, timeout=60) as response:
        return hashlib.sha256(response.read()).hexdigest()


def compare(
    folder: Path, names: Sequence[str], listed: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Split the ``names`` the index lists into same content and different content.

    The second list holds one readable line per conflicting file.
    """
    same, different = [], []
    for name in names:
        if name not in listed:
            continue
        local, remote = sha256(folder / name), _index_digest(listed[name])
        if local == remote:
            same.append(name)
        else:
            different.append(f"{name}: here sha256 {local}, on the index {remote}")
    return same, different
