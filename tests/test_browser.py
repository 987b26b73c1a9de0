"""Open every page of the built book in a real, offline headless Chromium.

Run:  pytest -m browser tests/test_browser.py -p no:xdist
Needs: apt-get install -y chromium   (binary /usr/bin/chromium)
       pip install playwright        (no `playwright install`: Debian's chromium is used)

Every request that leaves 127.0.0.1 is aborted and fails the page, so a pass means the
book works with no network: MathJax and the ipywidgets manager are served by the book
(see .ci/fetch-offline-assets). For each page in _toc.yml the test checks that nothing
failed to load, the maths is typeset, every image loaded, no error output or console
error is shown, quizzes answer, flashcards flip, `to_jshtml` scrubbers change frame and
saved widget state renders. A full-page screenshot goes to _build/screenshots/<page>.png.

If _build/html/index.html is missing the book is built first
(`.ci/fetch-offline-assets`, then `jupyter-book build . -W -n --keep-going`).
BOOK_DIR (book source root, default: the repository) and BOOK_HTML_DIR (default:
$BOOK_DIR/_build/html) point the test at another build, e.g. a scratch book.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
from test_book_structure import toc_entries  # one parser of _toc.yml for both tests

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
BOOK_DIR = Path(os.environ.get("BOOK_DIR", REPO)).resolve()
HTML_DIR = Path(os.environ.get("BOOK_HTML_DIR", BOOK_DIR / "_build" / "html")).resolve()
SHOT_DIR = HTML_DIR.parent / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# Console errors known to be harmless, each with its reason. Keep this list short.
BENIGN_CONSOLE_ERRORS = [
    # Sphinx 7.4 adds sphinx-thebe's inline config <script> twice (a body-only script
    # registered after builder init is not deduplicated); the first copy defines the
    # same constants, and thebe is switched off in _config.yml.
    re.compile(r"Identifier 'THEBE_JS_URL' has already been declared"),
]
TIMEOUT_MS = 15_000
SHOT_MAX_HEIGHT = 12_000  # px; the API page is ~30k px tall and a full PNG takes ~7 s

INSTALL_HINT = ("install the browser test tools: `apt-get install -y chromium` "
                "(binary /usr/bin/chromium) and `pip install playwright` "
                "(no `playwright install` needed)")


def toc_pages(book_dir: Path = BOOK_DIR) -> list[str]:
    """Every document of _toc.yml, as an extensionless path ("book/intro")."""
    return [re.sub(r"\.(md|ipynb)$", "", p) for p in toc_entries(book_dir)]


def _missing_tools() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def _build_book() -> None:
    if not (BOOK_DIR / "book" / "_offline").is_dir():
        subprocess.run([str(BOOK_DIR / ".ci" / "fetch-offline-assets")], cwd=BOOK_DIR, check=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", ".", "-W", "-n", "--keep-going"]
    proc = subprocess.run(cmd, cwd=BOOK_DIR, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` failed:\n{(proc.stdout + proc.stderr)[-4000:]}")


@pytest.fixture(scope="module")
def html_dir() -> Path:
    missing = _missing_tools()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; {INSTALL_HINT}")
        pytest.skip(f"{missing}; {INSTALL_HINT}")
    if not (HTML_DIR / "index.html").exists():
        _build_book()
    return HTML_DIR


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture(scope="module")
def base_url(html_dir: Path):
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser(html_dir: Path):
    from playwright.sync_api import sync_playwright

    # launch() gives Chromium a fresh temporary profile of its own
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class PageLog:
    """Everything that went wrong while a page loaded and was clicked."""

    def __init__(self):
        self.external: list[str] = []
        self.failed: list[str] = []
        self.http_errors: list[str] = []
        self.console_errors: list[str] = []

    def console_error(self, text: str) -> None:
        if "ERR_BLOCKED_BY_CLIENT" in text:  # the blocked external request, reported already
            return
        if not any(rx.search(text) for rx in BENIGN_CONSOLE_ERRORS):
            self.console_errors.append(text)

    def problems(self) -> list[str]:
        return list(dict.fromkeys(  # each problem once, in order
            [f"external request blocked: {u}" for u in self.external]
            + [f"request failed: {u}" for u in self.failed]
            + [f"HTTP error: {u}" for u in self.http_errors]
            + [f"console error: {m}" for m in self.console_errors]))


def _route(log: PageLog, route):
    url = route.request.url
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https", "ws", "wss") and parsed.hostname not in LOCAL_HOSTS:
        log.external.append(url)
        route.abort("blockedbyclient")
    else:
        route.continue_()


@pytest.fixture()
def open_page(browser, base_url):
    contexts = []

    def _open(path: str):
        log = PageLog()
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      service_workers="block")
        contexts.append(context)
        context.route("**/*", functools.partial(_route, log))
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("requestfailed", lambda r: None if urlparse(r.url).hostname not in LOCAL_HOSTS
                else log.failed.append(f"{r.url} ({r.failure})"))
        page.on("response", lambda r: log.http_errors.append(f"{r.status} {r.url}")
                if r.status >= 400 else None)
        page.on("console", lambda m: log.console_error(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: log.console_error(f"uncaught: {e}" + (f" [{e.stack.splitlines()[1].strip()}]" if getattr(e, "stack", None) and len(e.stack.splitlines()) > 1 else "")))
        page.goto(f"{base_url}/{path}", wait_until="load")
        try:
            page.wait_for_load_state("networkidle", timeout=TIMEOUT_MS)
        except Exception:  # a page that polls forever still gets checked below
            pass
        return page, log

    yield _open
    for context in contexts:
        context.close()


# --- the checks, one helper each ------------------------------------------------------

TEX_PATTERNS = [
    (re.compile(r"\$\$"), "$$"),
    (re.compile(r"\\\(|\\\)"), r"\( \)"),
    (re.compile(r"\\\[|\\\]"), r"\[ \]"),
    (re.compile(r"\\begin\{"), r"\begin{"),
    (re.compile(r"\$[^$\n]{0,80}\\[A-Za-z]+[^$\n]{0,80}\$"), "$...\\cmd...$"),
]

# text of the main article without code, scripts and typeset maths
VISIBLE_TEXT_JS = """() => {
  const main = document.querySelector('main article, main, article, body').cloneNode(true);
  main.querySelectorAll('pre, code, script, style, textarea, mjx-container, .highlight, '
                        + '.cell_input, .MathJax_Preview').forEach(e => e.remove());
  return main.textContent;
}"""


def holds_within(page, predicate_js: str, arg=None, timeout: int = TIMEOUT_MS) -> bool:
    """Whether the JavaScript predicate becomes true within ``timeout`` ms."""
    try:
        page.wait_for_function(predicate_js, arg=arg, timeout=timeout)
        return True
    except Exception:
        return False


def check_maths(page, html: str) -> list[str]:
    errors = []
    if 'class="math' in html:  # Sphinx's maths nodes; MathJax is on the page
        if not page.evaluate("() => !!(window.MathJax && window.MathJax.startup)"):
            return ["page has maths but MathJax did not load"]
        page.evaluate("() => window.MathJax.startup.promise")
        if not holds_within(page, "() => !document.querySelector('.math:not(:has(mjx-container))')"):
            n = page.evaluate("() => document.querySelectorAll('.math:not(:has(mjx-container))').length")
            errors.append(f"{n} maths element(s) not typeset by MathJax")
        merror = page.locator("mjx-merror")
        if merror.count():
            errors.append(f"MathJax TeX error: {merror.first.get_attribute('data-mjx-error')}")
    text = page.evaluate(VISIBLE_TEXT_JS)
    if any(rx.search(text) for rx, _ in TEX_PATTERNS):
        # jupyterquiz/jupytercards typeset their own maths 500 ms after they are drawn
        page.wait_for_timeout(1500)
        text = page.evaluate(VISIBLE_TEXT_JS)
    for rx, name in TEX_PATTERNS:
        m = rx.search(text)
        if m:
            errors.append(f"raw TeX {name} visible: ...{text[max(0, m.start() - 40):m.end() + 40]!r}...")
    return errors


IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
      i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 10000); })));
  return imgs.filter(i => i.getAttribute('src') && !(i.complete && i.naturalWidth > 0))
             .map(i => i.currentSrc || i.src);
}"""


def check_images(page) -> list[str]:
    return [f"image did not load: {src[:120]}" for src in page.evaluate(IMAGES_JS)]


def check_no_error_output(page) -> list[str]:
    errors = []
    for sel in [".output.stderr", ".output.traceback", ".output.error", ".output_stderr"]:
        n = page.locator(sel).count()
        if n:
            errors.append(f"{n} error output(s) `{sel}`: {page.locator(sel).first.inner_text()[:200]!r}")
    if "Traceback (most recent call last)" in page.evaluate("() => document.body.innerText"):
        errors.append("a Python traceback is shown on the page")
    return errors


def check_quizzes(page, html: str) -> list[str]:
    if "data-shufflequestions" not in html:  # jupyterquiz's container attribute
        return []
    quizzes = page.locator("div[data-shufflequestions]")
    if not quizzes.count():
        return ["jupyterquiz output present but no quiz rendered"]
    errors = []
    for i in range(quizzes.count()):
        quiz = quizzes.nth(i)
        buttons = quiz.locator("label.MCButton, .MCButton")
        try:
            buttons.first.wait_for(state="visible")
        except Exception:
            # numeric/string questions have an input instead of buttons
            if quiz.locator("input[type=text], input[type=number]").count():
                continue
            errors.append(f"quiz {i}: no answer buttons rendered")
            continue
        # The question (one `.Quiz` wrapper each) that holds the first button, and its own feedback.
        question = quiz.locator(".Quiz", has=page.locator(".MCButton")).first
        feedback = question.locator(".Feedback").first
        before = feedback.inner_text() if feedback.count() else ""
        question.locator("label.MCButton, .MCButton").first.click()
        if not holds_within(page, "([el, before]) => el && el.innerText.trim() && el.innerText !== before",
                            [feedback.element_handle(), before], timeout=5000):
            errors.append(f"quiz {i}: clicking an answer gave no feedback")
    return errors


def check_flashcards(page, html: str) -> list[str]:
    if "flip-container" not in html:  # jupytercards' deck container
        return []
    decks = page.locator("div.flip-container")
    errors = []
    for i in range(decks.count()):
        deck = decks.nth(i)
        try:
            deck.locator(".flipper").first.wait_for(state="attached")
        except Exception:
            errors.append(f"flashcard deck {i}: no cards rendered")
            continue
        was_flipped = "flip" in (deck.get_attribute("class") or "").split()
        deck.click()
        if not holds_within(page, "([el, was]) => el.classList.contains('flip') !== was",
                            [deck.element_handle(), was_flipped], timeout=5000):
            errors.append(f"flashcard deck {i}: clicking did not flip the card")
    if not decks.count():
        errors.append("jupytercards output present but no deck rendered")
    return errors


SCRUB_JS = """(slider) => {
  const id = slider.id.replace('_anim_slider', '');
  const img = document.getElementById('_anim_img' + id);
  const before = img ? img.src : null;
  const target = String(Number(slider.value) === Number(slider.max) ? slider.min : slider.max);
  slider.value = target;
  slider.dispatchEvent(new Event('input', {bubbles: true}));
  slider.dispatchEvent(new Event('change', {bubbles: true}));
  return {before: before, after: img ? img.src : null, target: target};
}"""


def check_scrubbers(page, html: str) -> list[str]:
    if "anim-slider" not in html:  # matplotlib Animation.to_jshtml()
        return []
    sliders = page.locator("input[type=range].anim-slider")
    errors = []
    if not sliders.count():
        errors.append("to_jshtml animation present but no slider rendered")
    for i in range(sliders.count()):
        res = sliders.nth(i).evaluate(SCRUB_JS)
        if res["before"] is None:
            errors.append(f"scrubber {i}: no frame image")
        elif res["before"] == res["after"]:
            errors.append(f"scrubber {i}: moving the slider to {res['target']} showed the same frame")
    return errors


def check_widgets(page, html: str) -> list[str]:
    n_views = html.count('type="application/vnd.jupyter.widget-view+json"')
    if not n_views:
        return []
    if not holds_within(page, "n => document.querySelectorAll('.widget-subarea .jupyter-widgets').length >= n",
                        n_views):
        got = page.locator(".widget-subarea .jupyter-widgets").count()
        return [f"{n_views} saved widget view(s) but only {got} rendered "
                "(is widgets/embed.js served and the widget state saved?)"]
    return []


def screenshot(page, doc: str) -> None:
    SHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => window.scrollTo(0, 0)")
    height = min(page.evaluate("() => document.documentElement.scrollHeight"), SHOT_MAX_HEIGHT)
    page.screenshot(path=str(SHOT_DIR / f"{Path(doc).name}.png"), full_page=True,
                    clip={"x": 0, "y": 0, "width": 1280, "height": height})


@pytest.mark.parametrize("doc", toc_pages())
def test_page_renders_offline(doc, open_page, html_dir):
    html_file = html_dir / f"{doc}.html"
    assert html_file.exists(), f"{doc} is in _toc.yml but {html_file} was not built"
    html = html_file.read_text(encoding="utf-8")
    page, log = open_page(f"{doc}.html")

    problems = []
    problems += check_maths(page, html)
    problems += check_images(page)
    problems += check_no_error_output(page)
    problems += check_widgets(page, html)
    screenshot(page, doc)  # as a reader first sees it, before the clicks below
    problems += check_quizzes(page, html)
    problems += check_flashcards(page, html)
    problems += check_scrubbers(page, html)

    problems += log.problems()  # collected last: clicks above may have fetched more
    assert not problems, f"{doc}.html:\n  " + "\n  ".join(problems)
