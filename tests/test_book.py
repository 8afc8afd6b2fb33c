"""The book pipeline end to end at the smoke profile: papermill → Jupyter Book → a browser with no network."""
import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from giasok import book

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build" / "test-smoke"  # ignored; screenshots land here for a person to look at
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    os.environ["GIASOK_RESULTS"] = str(results)  # inherited by the papermill kernels
    try:
        shutil.rmtree(BUILD, ignore_errors=True)
        index = book.build_book(profile="smoke", device="cpu", build=BUILD, progress=False)
    finally:
        del os.environ["GIASOK_RESULTS"]
    return index, results


def test_committed_notebooks_carry_no_outputs_and_take_parameters():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        cells = json.loads(path.read_text())["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path.name
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: one cell must be tagged 'parameters'"
        assert all(f"{name} =" in "".join(tagged[0]["source"]) for name in ("profile", "device", "seed"))


def test_every_notebook_ran_to_the_end_at_smoke(built_book):
    executed = sorted((BUILD / "executed" / "smoke").glob("*.ipynb"))
    assert [p.name for p in executed] == [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))]
    for path in executed:
        code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        assert all(c["execution_count"] is not None for c in code), f"{path.name} stopped early"
        assert not any(o["output_type"] == "error" for c in code for o in c["outputs"]), path.name


def test_book_built_without_warnings_and_with_a_scorecard(built_book):
    index, results = built_book
    html = index.parent
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):  # every section is a chapter of the book
        assert (html / "notebooks" / f"{notebook.stem}.html").exists(), f"{notebook.name} is not in book/_toc.yml"
    for section in ("4.1", "4.2.1", "5.1", "6"):  # every section with an insight recorded its claims
        assert json.loads((results / "claims" / "smoke" / f"{section}.json").read_text())["claims"], section
    record = json.loads((results / "claims" / "smoke" / "4.1.json").read_text())
    claims = record["claims"]
    assert {"claim", "passed", "ours", "paper", "statistic", "p_value"} <= set(claims[0])
    assert record["overrides"] == {} and "α = 0.05" in record["rule"]
    intro = (html / "intro.html").read_text()
    assert "Scorecard" in intro and claims[0]["claim"].split("(")[0].strip() in intro
    assert "Decision rule" in intro  # the one significance rule is printed with the scorecard
    assert "smoke" in intro  # the intro says which profile built this copy
    page = (html / "notebooks" / "01_training_setup.html").read_text()
    assert "injected-parameters" not in page and "Parameters (papermill)" not in page
    for name in book.OFFLINE_ASSETS:
        assert (html / name).exists()


def test_publish_refuses_a_missing_build(tmp_path):
    with pytest.raises(SystemExit, match="make book"):
        book.publish(tmp_path)


def test_a_bad_parameter_fails_in_the_first_cell(tmp_path):
    import papermill

    with pytest.raises(papermill.PapermillExecutionError, match="local_updates must be"):
        book.execute(ROOT / "notebooks" / "01_training_setup.ipynb", tmp_path / "bad.ipynb", profile="smoke",
                     device="cpu", parameters={"local_updates": [0, 2]}, progress=False)
    with pytest.raises(papermill.PapermillExecutionError, match="models must be a list"):
        book.execute(ROOT / "notebooks" / "04_training_stage.ipynb", tmp_path / "bad.ipynb", profile="smoke",
                     device="cpu", parameters={"models": ["vgg12"]}, progress=False)
    with pytest.raises(papermill.PapermillExecutionError, match="unknown profile 'huge'"):
        book.execute(ROOT / "notebooks" / "01_training_setup.ipynb", tmp_path / "bad.ipynb", profile="huge",
                     device="cpu", progress=False)


@pytest.fixture(scope="module")
def browser_page(built_book):
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required under CI=true (.ci/run installs Debian's chromium)")
        pytest.skip("no Chromium on this machine: install Debian's 'chromium' to run the browser test")
    from playwright.sync_api import sync_playwright

    # the browser opens the published archive's copy, unpacked elsewhere: what a reader without a network gets
    archive = book.publish(BUILD, archive=BUILD / "giasok-book.zip")
    unpacked = BUILD / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    shutil.unpack_archive(archive, unpacked)
    html = unpacked / "giasok-book"

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    outside = []

    def only_the_build(route):  # everything outside the build folder is blocked, and remembered
        url = route.request.url
        if url.startswith((base, "data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", only_the_build)
        yield page, base, outside
        browser.close()
    server.shutdown()


def test_slider_switches_reconstructions_in_the_static_page(browser_page):
    page, base, outside = browser_page
    failures = []
    page.on("response", lambda r: failures.append(r.url) if r.status >= 400 else None)
    page.goto(base + "notebooks/01_training_setup.html")
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.wait_for(timeout=30000)
    # the widget manager renders the panels after the slider: wait for the first caption before reading
    page.wait_for_function("() => [...document.querySelectorAll('.widget-html-content')]"
                           ".some(e => e.offsetParent !== null && e.innerText.startsWith('U = 1'))", timeout=30000)

    def captions():
        return [t for t in page.locator(".widget-html-content:visible").all_inner_texts() if "PSNR" in t]

    before = captions()
    assert before and before[0].startswith("U = 1")
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => [...document.querySelectorAll('.widget-html-content')]"
                           ".some(e => e.offsetParent !== null && e.innerText.startsWith('U = 4'))", timeout=15000)
    after = captions()
    assert after[0] != before[0] and after[0].startswith("U = 4")
    page.screenshot(path=str(BUILD / "screenshot-01-training-setup.png"), full_page=True)
    # the bundled widget modules find their fonts next to their module URLs: those must be our static copy
    for module in ("@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"):
        assert "/_static/html-manager/" in page.evaluate("(m) => require.toUrl(m)", module), module
    assert outside == [], f"the page tried to reach outside the build folder: {outside}"
    assert failures == [], f"missing files: {failures}"


def test_intro_scorecard_renders(browser_page):
    page, base, outside = browser_page
    page.goto(base + "intro.html")
    page.wait_for_selector("section#scorecard table")
    assert page.locator("table").count() >= 1
    page.screenshot(path=str(BUILD / "screenshot-intro.png"), full_page=True)
    assert outside == []


def test_systematization_table_filters_offline(browser_page):
    page, base, outside = browser_page
    page.goto(base + "notebooks/00_systematization.html")
    rows = page.locator("table.dataTable tbody tr:visible")
    rows.first.wait_for(timeout=30000)
    assert rows.count() == 38
    page.locator(".dt-search input, .dataTables_filter input").first.fill("GIA-L")
    page.wait_for_function("() => document.querySelectorAll('table.dataTable tbody tr').length < 38", timeout=5000)
    assert 0 < rows.count() < 38
    page.screenshot(path=str(BUILD / "screenshot-00-systematization.png"), full_page=True)
    assert outside == []


def _visible_caption_starting(page, prefix, timeout=15000):
    page.wait_for_function("(p) => [...document.querySelectorAll('.widget-html-content')]"
                           ".some(e => e.offsetParent !== null && e.innerText.startsWith(p))", arg=prefix,
                           timeout=timeout)
    return [t for t in page.locator(".widget-html-content:visible").all_inner_texts() if t.startswith(prefix)][0]


def _open_and_step_slider(page, url, first_prefix):
    """Open ``url``, wait for the explorer's first panel (caption starting ``first_prefix``) and move its
    slider one step right; returns that first caption."""
    page.goto(url)
    handle = page.locator(".widget-slider .noUi-handle").first
    handle.wait_for(timeout=30000)
    first = _visible_caption_starting(page, first_prefix, timeout=30000)
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("ArrowRight")
    return first


def test_round_slider_and_model_toggle_of_section_5_1(browser_page):
    page, base, outside = browser_page
    first = _open_and_step_slider(page, base + "notebooks/04_training_stage.html", "round = 0 · convnet")
    assert all(metric in first for metric in ("test accuracy", "IGSA", "PSNR"))
    _visible_caption_starting(page, "round = 1 · convnet")
    page.locator(".widget-toggle-button", has_text="lenet").first.click()
    _visible_caption_starting(page, "round = 1 · lenet")
    page.screenshot(path=str(BUILD / "screenshot-04-igsa-stages.png"), full_page=True)
    assert outside == []


def test_every_chapter_states_its_provenance_and_keeps_whole_statements(browser_page, built_book):
    import subprocess

    import torch

    from giasok import training_stage as st

    page, base, outside = browser_page
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    for chapter in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page.goto(base + f"notebooks/{chapter.stem}.html")
        block = page.locator("div.giasok-provenance")
        block.wait_for(timeout=30000)
        text = block.inner_text()
        for expected in (f"commit {commit}", f"torch {torch.__version__}", "profile", "smoke", "wall time",
                         "computed", "loaded from the cache", "device"):
            assert expected in text, (chapter.name, expected, text)
    # a paper statement sits whole in a table cell (wrapped, not cut with "…")
    page.goto(base + "notebooks/04_training_stage.html")
    statement = st.PAPER_FINDINGS["early vs late"]
    cells = page.locator("td", has_text=statement)
    cells.first.wait_for(timeout=30000)
    assert statement in cells.first.inner_text()
    assert page.evaluate("(s) => [...document.querySelectorAll('td')].some(td => td.innerText.trim() === s"
                         " && getComputedStyle(td).whiteSpace === 'normal')", statement)
    page.screenshot(path=str(BUILD / "screenshot-04-statements.png"), full_page=True)
    # the claims records carry the same provenance, and the scorecard prints it
    record = json.loads((built_book[1] / "claims" / "smoke" / "5.1.json").read_text())
    assert record["provenance"]["commit"] == commit and record["provenance"]["results_computed"] > 0
    page.goto(base + "intro.html")
    assert f"commit {commit}" in page.locator("section#scorecard").inner_text()
    assert outside == []


def test_defence_slider_and_toggle_of_section_6(browser_page):
    page, base, outside = browser_page
    first = _open_and_step_slider(page, base + "notebooks/06_post_processing.html", "level = 0 · Q · GIA-O")
    assert "none" in first and "accuracy" in first and "PSNR" in first
    assert "Q 2" in _visible_caption_starting(page, "level = 1 · Q · GIA-O")
    page.locator(".widget-toggle-button", has_text="S · ROG").first.click()
    assert "S 0.6" in _visible_caption_starting(page, "level = 1 · S · ROG")
    page.screenshot(path=str(BUILD / "screenshot-06-post-processing.png"), full_page=True)
    assert outside == []
