"""Open every page of the built documentation site in headless Chromium.

``nox -s docs`` builds the site and runs this module with ``CC_DOCS_SITE``
(the built site) and ``CC_CHROMIUM`` (Debian's chromium) set. The site is
served from a local ``http.server`` on 127.0.0.1; each page fails the test
if it answers with an HTTP error, has no main heading, logs a console error
or a page error, fails to load one of its own resources, tries to reach
anything outside 127.0.0.1 (the site must be self-contained: no web fonts, no
CDN), or shows markup that was never converted: a reStructuredText role, an
explicit-title reference (``name <cc.module.name>``), a Sphinx field or
directive, or a Markdown reference that did not resolve (outside code
blocks, which may show anything). The home page's package table must keep
each module name whole, and the benchmarks section must show one rendered
chart per package next to its table. Set ``CC_DOCS_SCREENSHOTS`` to a
directory to keep a PNG of each page.
"""

from __future__ import annotations

import functools
import http.server
import importlib
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

SITE_VARIABLE = "CC_DOCS_SITE"
CHROMIUM_VARIABLE = "CC_CHROMIUM"
SCREENSHOTS_VARIABLE = "CC_DOCS_SCREENSHOTS"
BENCHMARK_DATA = Path(__file__).resolve().parents[1] / "benchmarks" / "latest.json"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Pages every build must contain (the rest are found by walking the site).
REQUIRED_PAGES = [
    "index.html",
    "getting-started/index.html",
    "guides/primitives/index.html",
    "guides/queues/index.html",
    "guides/locks/index.html",
    "guides/core-helpers/index.html",
    "examples/index.html",
    "reference/index.html",
    "reference/primitives/index.html",
    "reference/queues/index.html",
    "reference/locks/index.html",
    "reference/core-helpers/index.html",
    "reference/concurrency/index.html",
    "comparison/index.html",
    "contributing/index.html",
    "release/index.html",
]
# Where the API reference documents each public module.
REFERENCE_PAGES = {
    "cc.primitives": "reference/primitives/index.html",
    "cc.queues": "reference/queues/index.html",
    "cc.locks": "reference/locks/index.html",
    "cc.core_helpers": "reference/core-helpers/index.html",
}

if not os.environ.get(SITE_VARIABLE):
    pytest.skip(
        f"{SITE_VARIABLE} is not set: run 'nox -s docs', which builds the site "
        "and sets it",
        allow_module_level=True,
    )

SITE = Path(os.environ[SITE_VARIABLE]).resolve()
PAGES = sorted(path.relative_to(SITE).as_posix() for path in SITE.rglob("*.html"))

from playwright.sync_api import (  # noqa: E402 (only once the site is known)
    Browser,
    ConsoleMessage,
    Request,
    Response,
    Route,
    sync_playwright,
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output free of one access-log line per request."""


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """Serve the built site on a free port of 127.0.0.1 for this module."""
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="docs-server")
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}/"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Debian chromium, never a downloaded browser build."""
    executable = os.environ.get(CHROMIUM_VARIABLE)
    if not executable:
        pytest.fail(f"{CHROMIUM_VARIABLE} must name the chromium executable")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageProblems:
    """What went wrong while one page loaded."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        return [
            *(f"console error: {m}" for m in self.console_errors),
            *(f"page error: {m}" for m in self.page_errors),
            *(f"failed request: {m}" for m in self.failed_requests),
            *(f"external request (not allowed): {m}" for m in self.external_requests),
        ]


# Markup that means a conversion failed, in the text a reader sees.
RAW_MARKUP = {
    "reStructuredText role": re.compile(r":(?:py:)?[a-z]+:`"),
    "explicit-title reference": re.compile(r"<cc\.[A-Za-z_][\w.]*>"),
    "Sphinx field": re.compile(
        r"^:(?:param|type|raises?|returns?|rtype|ivar|cvar)\b[^:]*:"
    ),
    "Sphinx directive": re.compile(r"^\.\. [a-z-]+::"),
    "unresolved Markdown reference": re.compile(r"\]\[[A-Za-z_][\w.]*\]"),
    "doctest prompt outside a code block": re.compile(r"^>>> "),
}
# The text of each block of the article (paragraph, list item, cell...),
# whitespace collapsed, leaving out code blocks (examples may show any syntax).
BLOCK_TEXTS = """() => Array.from(document.querySelectorAll(
        "article :is(p, li, td, th, dt, dd, h1, h2, h3, h4, h5, h6, blockquote)"))
    .filter(block => !block.closest("pre, .highlight"))
    .map(block => block.textContent.replace(/\\s+/g, " ").trim())"""


def raw_markup(*blocks: str) -> list[str]:
    """Each piece of unconverted markup in ``blocks``, with what kind it is."""
    found = []
    for text in blocks:
        for kind, pattern in RAW_MARKUP.items():
            for match in pattern.finditer(text):
                start = max(0, match.start() - 40)
                found.append(f"{kind}: ...{text[start : match.end() + 20]!r}")
    return found


def test_the_raw_markup_check_catches_what_it_must() -> None:
    shown = "WorkQueue.from_config <cc.queues.WorkQueue.from_config>():"
    assert raw_markup(shown)
    assert raw_markup("see :class:`Lock` for")
    assert raw_markup("a [`Lock`][cc.primitives.Lock] link")
    assert raw_markup(":param timeout: how long")
    assert not raw_markup("values[0][1] and <cc.primitives._lock.Lock object>")
    assert raw_markup(".. note:: careful")
    assert raw_markup(">>> 1 + 1")
    assert not raw_markup("roles such as :class: are converted")
    assert not raw_markup("turns `>>>` examples into code blocks")


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname == "127.0.0.1"


def test_required_pages_were_built() -> None:
    missing = [page for page in REQUIRED_PAGES if not (SITE / page).is_file()]
    assert not missing, f"pages missing from {SITE}: {missing}"
    assert len(PAGES) >= len(REQUIRED_PAGES)


@pytest.mark.parametrize("module_name", sorted(REFERENCE_PAGES))
def test_reference_documents_every_public_name(module_name: str) -> None:
    module = importlib.import_module(module_name)
    html = (SITE / REFERENCE_PAGES[module_name]).read_text(encoding="utf-8")
    missing = [
        name for name in module.__all__ if f'id="{module_name}.{name}"' not in html
    ]
    assert not missing, f"{module_name} names without an API entry: {missing}"


def test_reexports_are_all_listed() -> None:
    meta = importlib.import_module("cc.concurrency")
    html = (SITE / "reference/concurrency/index.html").read_text(encoding="utf-8")
    missing = [
        name for name in meta.__all__ if name != "__version__" and name not in html
    ]
    assert not missing, f"cc.concurrency names not listed: {missing}"


@pytest.mark.parametrize("page_path", PAGES)
def test_page_renders(page_path: str, base_url: str, browser: Browser) -> None:
    problems = PageProblems()
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:

        def route(route: Route) -> None:
            if _is_local(route.request.url):
                route.continue_()
            else:
                problems.external_requests.append(route.request.url)
                route.abort()

        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                problems.console_errors.append(f"{message.text} ({message.location})")

        def on_page_error(error: Exception) -> None:
            problems.page_errors.append(str(error))

        def on_request_failed(request: Request) -> None:
            if _is_local(request.url):
                problems.failed_requests.append(f"{request.url} ({request.failure})")

        def on_response(response: Response) -> None:
            if response.status >= 400 and _is_local(response.url):
                problems.failed_requests.append(
                    f"{response.url} (HTTP {response.status})"
                )

        context.route("**/*", route)
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", on_page_error)

        page.on("requestfailed", on_request_failed)
        page.on("response", on_response)

        response = page.goto(base_url + page_path, wait_until="networkidle")
        assert response is not None, f"no response for {page_path}"
        assert response.ok, f"{page_path}: HTTP {response.status}"

        heading = page.locator("article h1").first
        assert heading.count() == 1, f"{page_path} has no main heading"
        assert heading.is_visible(), f"{page_path}: the main heading is not visible"
        assert heading.inner_text().strip(), f"{page_path}: the main heading is empty"

        blocks = page.evaluate(BLOCK_TEXTS)
        problems.page_errors.extend(
            f"unconverted markup, {found}" for found in raw_markup(*blocks)
        )

        screenshots = os.environ.get(SCREENSHOTS_VARIABLE)
        if screenshots:
            target = Path(screenshots) / (page_path.replace("/", "_") + ".png")
            target.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(target), full_page=False)

        found = problems.describe()
        assert not found, f"{page_path}:\n  " + "\n  ".join(found)
    finally:
        context.close()


def _open(browser: Browser, url: str, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.ok, url
    return context, page


@pytest.mark.parametrize("width", [1280, 900, 600])
def test_home_page_table_keeps_names_whole(
    base_url: str, browser: Browser, width: int
) -> None:
    context, page = _open(browser, base_url + "index.html", width)
    try:
        # An inline element broken across lines has one client rect per line.
        broken = page.evaluate(
            """() => Array.from(document.querySelectorAll("article table td code"))
                .filter(code => code.getClientRects().length > 1)
                .map(code => code.textContent)"""
        )
        names = page.locator("article table td:nth-child(2) code").all_inner_texts()
    finally:
        context.close()
    assert "cc.core_helpers" in names, names
    assert broken == [], f"broken across lines at {width}px: {broken}"


def test_benchmark_charts_are_there_and_render(base_url: str, browser: Browser) -> None:
    data = json.loads(BENCHMARK_DATA.read_text(encoding="utf-8"))
    groups = {r["group"] for r in data["results"] if r["impl"].startswith("cc ")}
    context, page = _open(browser, base_url + "comparison/index.html", 1280)
    try:
        charts = page.locator("article img.cc-bench-chart")
        assert charts.count() == len(groups), (charts.count(), sorted(groups))
        for index in range(charts.count()):
            chart = charts.nth(index)
            chart.scroll_into_view_if_needed()
            state = chart.evaluate(
                """img => ({complete: img.complete, width: img.naturalWidth,
                    height: img.getBoundingClientRect().height, src: img.src,
                    alt: img.alt,
                    next: img.closest("p").nextElementSibling.querySelector("table")
                        !== null})"""
            )
            assert state["complete"] and state["width"] > 0, state
            assert state["height"] > 150, state
            assert "cost over each baseline" in state["alt"], state
            assert state["next"], f"no table right after the chart: {state}"
            svg = page.request.get(state["src"])
            assert svg.ok and svg.headers["content-type"].startswith("image/svg")
            body = svg.text()
            assert "<svg" in body and "over the baseline" in body, state["src"]
    finally:
        context.close()
