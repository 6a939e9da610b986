"""Every page of both languages in headless Chromium: no serious or critical axe-core
violation, no console error, no failed request; math arrives typeset by the build, and
equals what the browser's KaTeX makes of the same formulas."""

import asyncio
import json
import os
import random

import pytest

from test_browser import CHROMIUM, pytestmark  # noqa: F401  (skip without chromium)

AXE_IMPACTS = {"serious", "critical"}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def site_pages(site) -> list[str]:
    """Every page's path under the site ('' for the home page, 'en/cnn/x/', ...)."""
    folders = (p.relative_to(site).parent.as_posix() for p in site.rglob("index.html"))
    return sorted("" if f == "." else f + "/" for f in folders if "assets" not in f)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def test_every_page_is_axe_clean_and_quiet(server, site):
    pages = site_pages(site)
    assert len(pages) > 100, pages  # both languages, content and notebook pages
    problems = asyncio.run(audit(server, pages, workers=os.cpu_count() or 1))
    assert not problems, "\n".join(problems[:40])


async def audit(server: str, pages: list[str], workers: int) -> list[str]:
    """axe-core and the console on each page, ``workers`` browser tabs at a time."""
    from axe_playwright_python.async_playwright import Axe
    from playwright.async_api import async_playwright

    axe, todo, problems = Axe(), list(pages), []

    async def worker(browser):
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        events: list[str] = []
        page.on("console", lambda m: m.type == "error" and events.append(m.text))
        page.on("pageerror", lambda e: events.append(f"uncaught: {e}"))
        page.on(  # a request cut short by the next navigation is not a failure
            "requestfailed",
            lambda r: r.failure != "net::ERR_ABORTED" and events.append(f"failed: {r.url}"),
        )
        page.on(
            "response", lambda r: r.status >= 400 and events.append(f"{r.status}: {r.url}")
        )
        while todo:
            path = todo.pop()
            events.clear()
            await page.goto(f"{server}/{path}", wait_until="networkidle")
            result = await axe.run(page)
            problems.extend(
                f"/{path}: {v['id']} ({v['impact']}, {len(v['nodes'])} nodes): "
                f"{v['nodes'][0]['target']}"
                for v in result.response["violations"]
                if v["impact"] in AXE_IMPACTS
            )
            problems.extend(f"/{path}: {e}" for e in events)
        await context.close()

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        await asyncio.gather(*(worker(browser) for _ in range(workers)))
        await browser.close()
    return sorted(problems)


def test_pages_load_no_math_javascript_and_math_matches_the_browsers_katex(
    browser, server, site
):
    pages = [p for p in site_pages(site) if "notebooks" not in p]
    for path in pages:
        html = (site / path / "index.html").read_text(encoding="utf-8")
        assert "katex.min.js" not in html and "auto-render" not in html, path
        assert 'class="arithmatex"' not in html, f"{path}: math left untypeset"
    page = browser.new_page()
    page.goto(f"{server}/en/foundations/backprop/")
    page.add_script_tag(url=f"{server}/assets/katex/katex.min.js")
    formulas = []
    for path in random.Random(0).sample(pages, 12):
        page.goto(f"{server}/{path}")
        formulas += page.eval_on_selector_all(
            ".katex",
            """els => els.map(e => [e.outerHTML,
                e.querySelector('annotation[encoding="application/x-tex"]').textContent,
                e.parentElement.classList.contains('katex-display')])""",
        )
    assert len(formulas) > 100
    page.add_script_tag(url=f"{server}/assets/katex/katex.min.js")
    for server_html, tex, display in random.Random(1).sample(formulas, 100):
        client_html = page.evaluate(
            """([tex, display]) => {
                const t = document.createElement('template');  // serialised like the page
                t.innerHTML = katex.renderToString(tex, {displayMode: display});
                const e = t.content.firstElementChild;  // display math: its .katex inside
                return (display ? e.firstElementChild : e).outerHTML;
            }""",
            [tex, display],
        )
        assert client_html == server_html, json.dumps([tex, display])
    page.close()
