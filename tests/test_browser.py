#!/usr/bin/env python3
"""The web page of `clipfind serve` in a real browser: headless Chromium
driven by Selenium (Debian's chromium, chromium-driver and python3-selenium;
nothing is downloaded).

    python3 tests/test_browser.py --clipfind build/src/app/clipfind [--artifacts DIR]

Searches by typing, checks the result grid, moves with the keyboard, plays a
hit and checks the player starts at the hit's time, filters by video, searches
by a dropped image, shows SigLIP's probability as a percentage, and saves a
screenshot (DIR/browser.png). A missing
browser is a failure, not a skip: CI installs it (scripts/install-deps.sh).
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_fixture import Server, index, make_library  # noqa: E402

SIGLIP_VISION = Path(__file__).resolve().parent / "data/models/siglip_vision_only"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CLIPFIND = None
ARTIFACTS = None


def require_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)}: install chromium and chromium-driver "
                           "(scripts/install-deps.sh)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        # Debian's python3-selenium lives here; a python3 from elsewhere (pyenv) does not look there.
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            import selenium  # noqa: F401
        except ImportError:
            raise RuntimeError(f"{sys.executable} cannot import selenium: install python3-selenium")


def start_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # CI runs as root in a container: no sandbox, and /dev/shm is small there.
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--disable-gpu"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


class Page(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        require_browser()
        cls.tmp = Path(tempfile.mkdtemp(prefix="clipfind_browser_"))
        make_library(cls.tmp / "lib")
        index(CLIPFIND, cls.tmp / "idx", cls.tmp / "lib")
        cls.server = Server(CLIPFIND, cls.tmp / "idx")
        try:
            cls.driver = start_browser()
        except Exception:
            cls.server.stop()
            raise
        cls.driver.set_page_load_timeout(30)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.driver.get_log("browser")  # drop what earlier tests left (an error state logs a 404)
        self.driver.get(self.server.url + "/")
        self.wait_for(lambda: "videos" in self.js("return document.getElementById('status').textContent"),
                      "the status line")

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def wait_for(self, condition, what, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except Exception:  # the page is still changing under us
                pass
            time.sleep(0.1)
        self.driver.save_screenshot(str(ARTIFACTS / f"timeout-{self._testMethodName}.png"))
        self.fail(f"timed out waiting for {what}")

    def cards(self):
        return self.js("""return [...document.querySelectorAll('#grid .card')].map(c => ({
            name: c.querySelector('.name').textContent, badge: c.querySelector('.badge').textContent,
            value: c.querySelector('.score .value').textContent,
            time: Number(c.dataset.time), selected: c.classList.contains('selected'),
            thumbLoaded: c.querySelector('img').complete && c.querySelector('img').naturalWidth > 0}))""")

    def type_query(self, text):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        body = self.driver.find_element(By.TAG_NAME, "body")
        body.send_keys("/")  # the shortcut focuses the search box
        self.assertEqual(self.js("return document.activeElement.id"), "q")
        box = self.driver.find_element(By.ID, "q")
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(text, Keys.ENTER)

    def test_search_play_and_keyboard(self):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys
        self.assertIn("Find moments", self.js("return document.getElementById('message').textContent"))
        self.type_query("a green square")
        cards = self.wait_for(lambda: self.cards(), "results")
        self.assertEqual(cards[0]["name"], "redgreen.mp4")
        self.assertTrue(cards[0]["selected"])
        self.assertRegex(cards[0]["badge"], r"^\d\d:\d\d:\d\d\.\d\d\d$")
        # A CLIP index: each card shows its score, not a probability.
        for c in cards:
            self.assertRegex(c["value"], r"^-?\d\.\d\d\d$")
        hit = cards[0]["time"]
        self.assertGreaterEqual(hit, 3.0)
        self.wait_for(lambda: all(c["thumbLoaded"] for c in self.cards()), "thumbnails to load")
        self.assertIn("#q=a%20green%20square", self.driver.current_url)

        # Arrows move the selection (focus leaves the box with ArrowDown).
        body = self.driver.find_element(By.TAG_NAME, "body")
        self.driver.find_element(By.ID, "q").send_keys(Keys.ARROW_DOWN)
        body.send_keys(Keys.ARROW_RIGHT)
        self.assertTrue(self.cards()[1]["selected"])
        body.send_keys(Keys.ARROW_LEFT)
        self.assertTrue(self.cards()[0]["selected"])

        # Click the best hit: the player opens and starts at its time.
        self.driver.find_elements(By.CSS_SELECTOR, "#grid .card")[0].click()
        self.wait_for(lambda: self.js("return document.getElementById('video-el').dataset.seeked") == "1",
                      "the video to load and seek")
        state = self.js("""const v = document.getElementById('video-el');
            return {t: v.currentTime, hit: Number(v.dataset.hitTime), src: v.currentSrc, error: v.error && v.error.code,
                    open: document.getElementById('player').classList.contains('open')}""")
        self.assertTrue(state["open"])
        self.assertIsNone(state["error"])
        self.assertAlmostEqual(state["hit"], hit)
        self.assertLess(abs(state["t"] - hit), 0.5, state)
        self.assertRegex(state["src"], r"/api/video/\d+$")
        time.sleep(0.3)  # let a frame paint for the screenshot
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(ARTIFACTS / "browser-player.png"))

        body.send_keys(Keys.ESCAPE)
        self.wait_for(lambda: not self.js("return document.getElementById('player').classList.contains('open')"),
                      "the player to close")
        # Enter on the selected card opens it again.
        body.send_keys(Keys.ENTER)
        self.wait_for(lambda: self.js("return document.getElementById('player').classList.contains('open')"),
                      "Enter to open the player")
        body.send_keys(Keys.ESCAPE)
        self.driver.save_screenshot(str(ARTIFACTS / "browser.png"))
        self.assert_no_console_errors()

    def test_filter_by_video(self):
        from selenium.webdriver.support.ui import Select
        from selenium.webdriver.common.by import By
        select = Select(self.driver.find_element(By.ID, "video"))
        self.wait_for(lambda: len(select.options) == 4, "the video list")  # all + 3
        self.type_query("a red square")
        self.wait_for(lambda: self.cards(), "results")
        select.select_by_visible_text("blue.webm")
        self.wait_for(lambda: {c["name"] for c in self.cards()} == {"blue.webm"}, "results of blue.webm only")

    def test_search_by_dropped_image(self):
        # What a drop delivers: a File in a DataTransfer (the picture of blue.webm's first frame).
        _, videos = self.server.json("/api/videos")
        blue = next(v for v in videos["videos"] if v["name"] == "blue.webm")
        self.drop_image(blue["thumbnail"])
        cards = self.wait_for(lambda: self.cards(), "image search results")
        self.assertEqual(cards[0]["name"], "blue.webm")
        self.assertTrue(self.js("return document.getElementById('chip').classList.contains('on')"))
        self.assertFalse(self.js("return document.getElementById('drop').classList.contains('on')"))

    def drop_image(self, url):
        """What a drop delivers: a File in a DataTransfer, fetched from `url`."""
        self.driver.execute_async_script("""const [url, done] = arguments;
            fetch(url).then(r => r.blob()).then(blob => {
              const dt = new DataTransfer();
              dt.items.add(new File([blob], 'query.jpg', {type: 'image/jpeg'}));
              window.dispatchEvent(new DragEvent('dragenter', {dataTransfer: dt}));
              window.dispatchEvent(new DragEvent('drop', {dataTransfer: dt}));
              done();
            });""", url)

    def test_siglip_results_show_the_probability_as_a_percentage(self):
        # A SigLIP index (the vision tower, given a whole model's logit
        # parameters in the index, where the server reads them from).
        from selenium.webdriver.common.by import By
        idx = self.tmp / "siglip-idx"
        r = subprocess.run([CLIPFIND, "index", "--index", idx, "--model", SIGLIP_VISION, "--no-progress",
                            self.tmp / "lib"], capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        with sqlite3.connect(idx / "catalog.sqlite") as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('logit_scale', '1.5'), ('logit_bias', '-3.25')")
        db.close()
        with Server(CLIPFIND, idx) as siglip:
            self.driver.get(siglip.url + "/")
            self.wait_for(lambda: "videos" in self.js("return document.getElementById('status').textContent"),
                          "the status line")
            _, videos = siglip.json("/api/videos")
            blue = next(v for v in videos["videos"] if v["name"] == "blue.webm")
            self.drop_image(blue["thumbnail"])
            cards = self.wait_for(lambda: self.cards(), "image search results")
            self.driver.save_screenshot(str(ARTIFACTS / "browser-siglip.png"))
            results = self.js("return state.results")
            self.assertEqual(len(cards), len(results))
            for card, res in zip(cards, results):
                pc = 100 * res["probability"]
                want = "<0.01%" if pc < 0.01 else ">99.99%" if pc > 99.99 else f"{pc:.2f}%"
                self.assertEqual(card["value"], want)
            self.driver.find_elements(By.CSS_SELECTOR, "#grid .card")[0].click()
            detail = self.wait_for(lambda: self.js("return document.getElementById('player').classList"
                                                   ".contains('open') && document.getElementById('p-detail')"
                                                   ".textContent"), "the player")
            self.assertIn("probability " + cards[0]["value"] + " · score ", detail)
            self.assert_no_console_errors()

    def test_empty_and_error_states(self):
        from selenium.webdriver.common.by import By
        # Before any search: the empty state invites one (checked in the test above); an error
        # from the server (here: a video that has left the index) is shown as an error state.
        self.js("document.getElementById('video').append(new Option('gone', '987654'));"
                "document.getElementById('video').value = '987654';")
        self.type_query("a red square")
        message = self.wait_for(
            lambda: self.js("const m = document.getElementById('message');"
                            "return !m.hidden && m.classList.contains('error') && m.textContent"),
            "the error message")
        self.assertIn("987654", message)
        self.assertEqual(self.cards(), [])
        self.assertEqual(len(self.driver.find_elements(By.CSS_SELECTOR, "#grid .card")), 0)

    def test_token_login(self):
        # With --token the page logs in once through /?token=..., then works
        # as usual: fetch, <img> and <video> all carry the cookie.
        token = "browser-test-token-0123456789"
        with Server(CLIPFIND, self.tmp / "idx", "--token", token) as guarded:
            self.driver.get(guarded.url + "/")
            self.wait_for(lambda: "token" in self.js("return document.getElementById('message').textContent"),
                          "the page to say it needs a token")
            self.driver.get(guarded.url + "/?token=" + token)
            self.assertEqual(self.driver.current_url, guarded.url + "/")  # the token left the address bar
            self.wait_for(lambda: "videos" in self.js("return document.getElementById('status').textContent"),
                          "the status line")
            self.type_query("a blue square")
            self.wait_for(lambda: self.cards() and all(c["thumbLoaded"] for c in self.cards()),
                          "results with thumbnails")
            self.assertEqual(self.cards()[0]["name"], "blue.webm")

    def assert_no_console_errors(self):
        errors = [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        self.assertEqual(errors, [], json.dumps(errors, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clipfind", required=True)
    parser.add_argument("--artifacts", default=None, help="where screenshots go (default: next to clipfind)")
    args, rest = parser.parse_known_args()
    CLIPFIND = str(Path(args.clipfind).resolve())
    ARTIFACTS = Path(args.artifacts or Path(CLIPFIND).parent.parent.parent / "tests/artifacts").resolve()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    unittest.main(argv=[sys.argv[0], *rest], verbosity=2)
