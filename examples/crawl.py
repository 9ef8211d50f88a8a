"""A polite crawler: bounded map, per-host rate limits and per-page time limits.

Crawls a simulated web site: ``async_map`` keeps at most ``--limit`` pages in
flight, one ``RateLimiter`` per host spaces out the requests to it,
``async_wait_for`` gives up on pages that take too long, and
``async_gather`` fetches each page's images together. Nothing touches the
network: latencies and failures come from a seeded random generator, so a
run is reproducible.

    python examples/crawl.py
    python examples/crawl.py --backend trio --pages 300 --limit 20
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from dataclasses import dataclass

import anyio

from cc.core_helpers import async_gather, async_map, async_run, async_wait_for
from cc.primitives import RateLimiter

HOSTS = ("docs.example.org", "shop.example.org", "blog.example.org")
PAGE_TIME_LIMIT = 0.05


@dataclass(frozen=True)
class Page:
    """A URL to crawl, and how the simulated server will answer it."""

    host: str
    path: str
    latency: float
    images: int
    status: int

    @property
    def url(self) -> str:
        """The page's address."""
        return f"https://{self.host}{self.path}"


@dataclass(frozen=True)
class Outcome:
    """What crawling one page gave."""

    url: str
    result: str
    bytes: int = 0


def site(pages: int, seed: int) -> list[Page]:
    rng = random.Random(seed)
    return [
        Page(
            host=rng.choice(HOSTS),
            path=f"/page/{n}",
            # one page in twenty is far too slow
            latency=0.2 if rng.random() < 0.05 else rng.uniform(0.001, 0.01),
            images=rng.randint(0, 3),
            status=404 if rng.random() < 0.05 else 200,
        )
        for n in range(pages)
    ]


class Crawler:
    """Fetches pages, no faster than ``rate`` requests a second per host."""

    def __init__(self, rate: float) -> None:
        self.limits = {host: RateLimiter(rate, period=1.0) for host in HOSTS}

    async def request(self, host: str, latency: float) -> None:
        """Wait for the host's rate limit, then for the simulated round trip."""
        await self.limits[host].acquire()
        await anyio.sleep(latency)

    async def fetch_image(self, page: Page, number: int) -> int:
        """Download one image of ``page``; return its size."""
        await self.request(page.host, 0.002)
        return 1_000 * (number + 1)

    async def fetch_page(self, page: Page) -> int:
        """Download ``page`` and its images together; return the total size."""
        await self.request(page.host, page.latency)
        if page.status != 200:
            raise LookupError(f"HTTP {page.status}")
        images = (
            await async_gather(*(self.fetch_image(page, n) for n in range(page.images)))
            if page.images
            else []
        )
        return 5_000 + sum(images)

    async def crawl(self, page: Page) -> Outcome:
        """Fetch ``page`` within the time limit and say how it went."""
        try:
            size = await async_wait_for(self.fetch_page(page), PAGE_TIME_LIMIT)
        except TimeoutError:
            return Outcome(page.url, "timed out")
        except LookupError as error:
            return Outcome(page.url, str(error))
        return Outcome(page.url, "ok", size)


async def run(pages: int, limit: int, rate: float, seed: int) -> int:
    crawler = Crawler(rate)
    started = anyio.current_time()
    outcomes = await async_map(crawler.crawl, site(pages, seed), limit=limit)
    elapsed = anyio.current_time() - started

    results = Counter(outcome.result for outcome in outcomes)
    downloaded = sum(outcome.bytes for outcome in outcomes)
    print(f"crawled {len(outcomes)} pages in {elapsed:.2f}s (at most {limit} at once)")
    for result, count in sorted(results.items()):
        print(f"  {result:<10} {count:>5}")
    print(f"  downloaded {downloaded / 1e6:.2f} MB")
    for host, limiter in crawler.limits.items():
        print(f"  {host:<18} {limiter.statistics().total_acquired:>6.0f} requests")
    if len(outcomes) != pages:
        print("error: some pages were lost", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--limit", type=int, default=10, help="pages in flight")
    parser.add_argument("--rate", type=float, default=100, help="requests/s per host")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    return async_run(
        run, args.pages, args.limit, args.rate, args.seed, backend=args.backend
    )


if __name__ == "__main__":
    sys.exit(main())
