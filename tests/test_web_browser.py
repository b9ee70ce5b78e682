"""The web page in a real headless Chromium, clicked as a user clicks it.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs
them where it may use apt; ``make browser`` says how otherwise).
"""
import pytest

from bert4keras_blog.xiangqi.rules import legal_moves
from web_tour import MATE_IN_ONE, Tour, chromium_paths, start_browser

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    chromium_paths() is None,
    reason='no chromium/chromium-driver: run `make browser` (apt-get install chromium '
           'chromium-driver) for the browser tests')]


@pytest.fixture(scope='module')
def tour(trained_server):
    driver = start_browser()
    try:
        yield Tour(driver, trained_server.url)
    finally:
        driver.quit()


def test_a_game_is_played_by_clicks_to_a_result(tour, tmp_path):
    tour.open('chess')
    assert tour.status_is('Your move') == 'Your move (red)'
    assert tour.piece('e0') == '帥' and tour.piece('e9') == '將'
    tour.move('h2e2')  # the model answers at once, with its candidates
    tour.status_is('Your move')
    moves = tour.moves()
    assert moves[0] == 'h2e2' and moves[1] in legal_moves(['h2e2'])
    assert len(tour.candidates()) == 5 and tour.candidates()[0].startswith(moves[1])
    assert tour.piece('e2') == '炮' and tour.piece('h2') == ''

    tour.click('[data-square="a0"]')  # a move the rules refuse is not sent
    tour.click('[data-square="a5"]')
    assert tour.moves() == moves and tour.piece('a0') == '俥'
    tour.driver.find_element('id', 'undo').click()
    tour.wait.until(lambda d: tour.moves() == [])
    assert tour.piece('h2') == '炮'

    tour.new_game('black')  # the model opens for red
    tour.status_is('Your move (black)')
    assert len(tour.moves()) == 1 and tour.moves()[0] in legal_moves([])

    tour.new_game('red', MATE_IN_ONE)
    tour.status_is('Your move')
    tour.move('a0a9')
    assert tour.status_is('Game over') == 'Game over: Red wins (checkmate)'
    assert tour.moves() == ['a0a9'] and tour.piece('a9') == '俥'
    tour.driver.save_screenshot(str(tmp_path / 'chess.png'))
    assert (tmp_path / 'chess.png').read_bytes()[:4] == b'\x89PNG'


def test_a_problem_is_solved(tour):
    assert tour.solve() == 'x = 12*5   answer: 60'
    cells = tour.texts('#math-candidates td')
    assert cells[:3] == ['12*5', cells[1], '60'] and float(cells[1]) <= 0


def test_a_title_is_generated(tour):
    title = tour.title()
    assert title and not title.startswith(('field', 'no trained'))
    assert tour.texts('#title-candidates td')[0] == title


def test_the_results_page_shows_a_card_per_post(tour):
    cards = tour.results()
    assert len(cards) == 8
    texts = tour.texts('.card')
    assert 'heldout_accuracy' in texts[2] and 'rouge-l' in texts[5]
    assert 'Not run yet. Run it with: python examples/post1_albert_electra.py' in texts[0]
    assert tour.driver.execute_script(
        'return [...document.querySelectorAll(".card img")].every(i => i.naturalWidth > 0)')
    assert tour.driver.execute_script('return document.querySelectorAll(".card img").length') > 0
