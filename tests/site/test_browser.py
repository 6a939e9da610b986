"""A reader's visit in headless Chromium: math, images, language switch, search, no CDN."""

import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)
SHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.foreign = []  # requests to any host but the local server
    page.on(
        "request",
        lambda r: (
            urlparse(r.url).hostname not in ("127.0.0.1", None)
            and not r.url.startswith("data:")
            and page.foreign.append(r.url)
        ),
    )
    yield page
    context.close()


def search(page, query: str) -> list[str]:
    page.click("input.md-search__input")
    page.fill("input.md-search__input", query)
    page.press("input.md-search__input", "End")  # the search listens for key events
    page.wait_for_selector(".md-search-result__item", timeout=15_000)
    return page.eval_on_selector_all(
        ".md-search-result__item a", "els => els.map(e => e.getAttribute('href'))"
    )


def test_zh_page_math_images_switcher_search(page, server):
    page.goto(f"{server}/cnn/convolution/")
    page.wait_for_selector(".katex", timeout=15_000)
    assert page.locator(".katex").count() > 20
    assert page.locator(".katex-error").count() == 0
    # all but the first figure load lazily: none has loaded before it is near the screen
    lazy = page.eval_on_selector_all(
        "article img", "els => els.slice(1).map(e => e.loading)"
    )
    assert lazy and set(lazy) == {"lazy"}, lazy
    for image in page.locator("article img").all():  # scroll past each: each loads
        image.scroll_into_view_if_needed()
    page.wait_for_function(
        "[...document.querySelectorAll('article img')].every(e => e.complete)",
        timeout=15_000,
    )
    images = page.eval_on_selector_all(
        "article img",
        "els => els.map(e => [e.getAttribute('src'), e.complete, e.naturalWidth])",
    )
    assert len(images) >= 3 and all(done and width > 0 for _, done, width in images), (
        images
    )
    page.evaluate("window.scrollTo(0, 0)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "zh-convolution.png"), full_page=False)

    page.hover(".md-header__option .md-select")  # the language menu
    page.click("a[hreflang=en]")
    page.wait_for_url("**/en/cnn/convolution/")
    assert page.locator("article h1").inner_text().rstrip("¶") == "Convolution"
    assert any("cnn/convolution" in href for href in search(page, "padding"))
    page.screenshot(path=str(SHOTS / "en-convolution.png"))

    page.goto(f"{server}/")
    assert any("cnn/convolution" in href for href in search(page, "卷积核"))
    assert page.foreign == [], f"requests left the machine: {page.foreign}"


def test_notebook_page_renders_and_offers_the_ipynb(page, server):
    page.goto(f"{server}/en/notebooks/cnn-convolution/")
    page.wait_for_selector(".jupyter-wrapper")
    links = page.eval_on_selector_all(
        "a[download]", "els => els.map(e => e.getAttribute('href'))"
    )
    assert "cnn-convolution.ipynb" in links, links
    response = page.request.get(
        f"{server}/en/notebooks/cnn-convolution/cnn-convolution.ipynb"
    )
    assert response.ok and b'"cells"' in response.body()
    assert page.foreign == [], f"requests left the machine: {page.foreign}"


def test_light_dark_switch_follows_the_system_then_the_reader(browser, server):
    """The switch (overrides/partials/palette.html) works by keyboard, in the page's
    language, starts from the system's scheme and keeps the reader's choice."""
    for system, first, other in (("light", "default", "slate"), ("dark", "slate", "default")):
        context = browser.new_context(color_scheme=system)
        page = context.new_page()
        page.goto(f"{server}/foundations/backprop/")
        scheme = "document.body.getAttribute('data-md-color-scheme')"
        assert page.evaluate(scheme) == first
        switch = page.locator("[data-dl-palette] button:visible")
        assert switch.count() == 1 and "模式" in switch.get_attribute("aria-label")
        switch.focus()
        page.keyboard.press("Enter")
        assert page.evaluate(scheme) == other
        page.goto(f"{server}/en/foundations/backprop/")
        assert page.evaluate(scheme) == other
        assert "mode" in page.locator("[data-dl-palette] button:visible").get_attribute(
            "aria-label"
        )
        context.close()
