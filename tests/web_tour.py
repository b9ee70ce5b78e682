"""The web page driven in headless Chromium, as a user clicks through it.

Used by tests/test_web_browser.py (against the runs the tests train) and
by ``make screenshots`` (against runs/, writing docs/web/*.png):

    python tests/web_tour.py --runs runs --out docs/web

Chromium and its driver are Debian's ``chromium`` and ``chromium-driver``
packages (``make browser`` installs them); Selenium only drives them.
"""
import argparse
import os
import shutil
import sys
import threading

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as when
from selenium.webdriver.support.ui import Select, WebDriverWait

# Red to move and mate in one: a0a9 (the black king cannot step onto rank 8,
# which the rook on i8 holds, nor along rank 9, and the kings may not face).
MATE_IN_ONE = '4k4/8R/9/9/9/9/9/9/9/R2K5 w - - 0 1'
PROBLEM = '一个长方形长12厘米，宽5厘米，它的面积是多少平方厘米？'
ABSTRACT = '国务院总理李鹏今天在人民大会堂会见了日本外务大臣，双方就两国关系和亚洲的经济形势交换了意见。'


def chromium_paths():
    """(browser, driver) binaries, or None when either is missing."""
    browser = shutil.which('chromium') or shutil.which('chromium-browser')
    driver = shutil.which('chromedriver') or (
        '/usr/lib/chromium/chromedriver' if os.path.exists('/usr/lib/chromium/chromedriver')
        else None)
    return (browser, driver) if browser and driver else None


def start_browser(width=1200, height=820):
    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                 '--window-size=%d,%d' % (width, height)):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def start_server(runs):
    """The page over ``runs`` on a free port; returns (server, base url)."""
    from bert4keras_blog.app.web import make_server
    server = make_server(str(runs), port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, 'http://127.0.0.1:%d/' % server.server_address[1]


class Tour(object):
    """One browser on one server; each method is what a user does."""

    def __init__(self, driver, url, timeout=120):
        self.driver, self.url = driver, url
        self.wait = WebDriverWait(driver, timeout)

    def texts(self, css):
        """Read in the page, not through element handles a re-render makes stale."""
        return self.driver.execute_script(
            'return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)', css)

    def text(self, css):
        return (self.texts(css) or [''])[0]

    def click(self, css):
        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def open(self, tab):
        self.driver.get(self.url + '#' + tab)
        self.wait.until(lambda d: d.execute_script('return window.ready === true'))

    def status_is(self, start):
        self.wait.until(lambda d: self.text('#chess-status').startswith(start))
        return self.text('#chess-status')

    def new_game(self, side='red', fen=''):
        Select(self.driver.find_element(By.ID, 'side')).select_by_value(side)
        field = self.driver.find_element(By.ID, 'fen')
        field.clear()
        field.send_keys(fen)
        self.click('#new-game')

    def move(self, iccs):
        """Clicks the piece, then its square; waits for the answer."""
        moves = len(self.moves())
        self.click('[data-square="%s"]' % iccs[:2])
        self.click('[data-square="%s"]' % iccs[2:])
        self.wait.until(lambda d: len(self.moves()) > moves or
                        self.text('#chess-status').startswith('Game over'))

    def moves(self):
        return self.texts('#move-list li')

    def candidates(self):
        return self.texts('#candidates li')

    def piece(self, square):
        return self.text('[data-square="%s"]' % square)

    def solve(self, problem=PROBLEM):
        self.open('maths')
        self.driver.find_element(By.ID, 'math-text').send_keys(problem)
        self.click('#math-solve')
        self.wait.until(lambda d: self.text('#math-answer').startswith(('x =', 'no ', 'field')))
        return self.text('#math-answer')

    def title(self, abstract=ABSTRACT):
        self.open('titles')
        self.driver.find_element(By.ID, 'title-text').send_keys(abstract)
        self.click('#title-generate')
        self.wait.until(lambda d: self.text('#title-output') not in ('', 'generating…'))
        return self.text('#title-output')

    def results(self):
        self.open('results')
        self.wait.until(when.presence_of_element_located((By.CSS_SELECTOR, '.card')))
        return self.driver.find_elements(By.CSS_SELECTOR, '.card')


def take_screenshots(runs, out):
    """A game, a problem, a title and the results, one PNG each in ``out``."""
    os.makedirs(out, exist_ok=True)
    server, url = start_server(runs)
    driver = start_browser()
    try:
        tour = Tour(driver, url)
        tour.open('chess')
        tour.status_is('Your move')
        for move in ('h2e2', 'b0c2'):
            tour.move(move)
            tour.status_is('Your move')
        driver.save_screenshot(os.path.join(out, 'chess.png'))
        tour.solve()
        driver.save_screenshot(os.path.join(out, 'maths.png'))
        tour.title()
        driver.save_screenshot(os.path.join(out, 'titles.png'))
        tour.results()
        driver.set_window_size(1200, 1600)
        driver.save_screenshot(os.path.join(out, 'results.png'))
    finally:
        driver.quit()
        server.shutdown()
    return sorted(os.listdir(out))


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', default='runs')
    parser.add_argument('--out', default='docs/web')
    args = parser.parse_args()
    if chromium_paths() is None:
        sys.exit('chromium and chromium-driver are needed: make browser')
    print('\n'.join(take_screenshots(args.runs, args.out)))
