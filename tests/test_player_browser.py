"""The HTML player in a real headless Chromium: stepping, highlighting, escaping, screenshot.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package; the
whole file is skipped, with the reason shown by ``pytest -rs``, when one is missing.
"""

import shutil
import tempfile
import time

import pytest

from autodiff_trace import Value, add, backward, mul, trace
from autodiff_trace.core.model import TraceModel
from autodiff_trace.views.player import write_player

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
CHROMEDRIVER = shutil.which("chromedriver")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
except ImportError:  # pragma: no cover - depends on the machine
    webdriver = None

MISSING = [what for what, found in (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER),
                                    ("selenium", webdriver)) if not found]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=(
    f"no headless browser: {', '.join(MISSING)} missing; install with `apt-get install -y chromium "
    f"chromium-driver` and `pip install selenium`"))

TRICKY = "</script><script>document.title='pwned'</script>"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The notebook's two passes under our engine, with one node given a hostile name."""
    with trace() as t:
        x = Value(5.0, name="x")
        y = Value(4.0, name=TRICKY)
        z = add(x, x)
        first = z.id
        backward(z)
        z = mul(add(x, y), add(x, y))
        backward(z)
    path = write_player(t.events, tmp_path_factory.mktemp("player") / "player.html", title="notebook")
    return path, TraceModel.from_events(t.events).name, first


@pytest.fixture(scope="module")
def first_z(page):
    """How the page names pass 1's root (``z``, or ``z #3`` beside the second z)."""
    _, name, first = page
    return name(first)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with a fresh profile and nothing that reaches the network."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1400,900",
                f"--user-data-dir={tempfile.mkdtemp(prefix='autodiff_trace_chromium_')}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def state(driver) -> tuple:
    """(step shown, id of the highlighted node in the visible frame, the ledger line shown)."""
    return tuple(driver.execute_script(
        "var g = document.querySelector('.frame:not([hidden]) g.now');"
        "return [document.body.dataset.step, g ? g.id : null,"
        " document.getElementById('now').textContent];"))


@pytest.fixture()
def loaded(browser, page):
    browser.get(page[0].as_uri())
    return browser


class TestPlayerInBrowser:
    def test_opens_on_the_first_step(self, loaded, first_z):
        """The page starts at step 0: pass 1 begins, its root highlighted."""
        step, node, text = state(loaded)
        assert step == "0" and node.startswith("f0-v")
        assert text == f"pass 1 begins at {first_z}: 2 nodes to visit"

    def test_next_moves_the_highlight_and_the_ledger_line(self, loaded, first_z):
        """Pressing next twice reaches z's firing: a new frame, z highlighted, its ledger line."""
        before = state(loaded)
        loaded.find_element(By.ID, "next").click()
        seeded = state(loaded)
        loaded.find_element(By.ID, "next").click()
        fired = state(loaded)
        assert seeded[2] == f"{first_z}.grad += 1 outside any backward function (0 → 1)"
        assert fired[0] == "2" and fired[2] == f"{first_z} fires, passing on 1 to its inputs"
        assert fired[1] != before[1] and fired[1].startswith("f1-v")

    def test_arrow_keys_step_forward_and_back(self, loaded, first_z):
        """→ steps to a gradient write into x; ← steps back to the firing."""
        body = loaded.find_element(By.TAG_NAME, "body")
        for _ in range(3):
            body.send_keys(Keys.ARROW_RIGHT)
        write = state(loaded)
        body.send_keys(Keys.ARROW_LEFT)
        assert write[0] == "3" and write[2] == f"x.grad += 1 × 1 = 1 from {first_z} (0 → 1)"
        assert state(loaded)[0] == "2"

    def test_slider_jumps_to_a_step(self, loaded):
        """Moving the slider to the last step shows the last write of pass 2."""
        loaded.execute_script("var s = document.getElementById('slider'); s.value = s.max;"
                              "s.dispatchEvent(new Event('input'));")
        step, node, text = state(loaded)
        assert text.startswith(f"{TRICKY}.grad += 1 × 9 = 9 from add#")
        assert node is not None

    def test_play_advances_and_pause_stops(self, loaded):
        """Play moves on by itself; pause holds the step."""
        loaded.find_element(By.ID, "play").click()
        time.sleep(1.2)
        loaded.find_element(By.ID, "play").click()
        held = state(loaded)[0]
        time.sleep(1.0)
        assert int(held) >= 1 and state(loaded)[0] == held
        assert loaded.find_element(By.ID, "play").text == "play"

    def test_hostile_name_stays_text(self, loaded):
        """A node named like a script tag is shown as text and runs nothing."""
        assert loaded.title == "notebook"
        assert loaded.execute_script("return document.scripts.length") == 2
        ledger = loaded.find_element(By.ID, "ledger").text
        assert f"{TRICKY}.grad += 1 × 9 = 9" in ledger
        errors = [e for e in loaded.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []

    def test_screenshot(self, loaded, tmp_path):
        """A screenshot mid-pass is a real picture of the page (kept in pytest's tmp folder)."""
        body = loaded.find_element(By.TAG_NAME, "body")
        for _ in range(10):
            body.send_keys(Keys.ARROW_RIGHT)
        shot = tmp_path / "player.png"
        assert loaded.save_screenshot(str(shot))
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 1000 and height >= 600
        assert loaded.execute_script("return document.querySelector('.frame:not([hidden]) svg')"
                                     ".getBoundingClientRect().width") > 300
