"""bert4keras_blog must be imported before bert4keras (it sets TF_KERAS and
resolves tf.keras first); importing it here makes the order of imports in
test modules irrelevant."""
import bert4keras_blog  # noqa: F401

import importlib.util  # noqa: E402
import os  # noqa: E402

import pytest  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The small settings the example tests train with, on top of --quick and
# through make demo's own runner, so the web page's tests serve run folders
# laid out as the demo writes them; each is trained once per session.
TRAINING = {
    'post3_math_word_problems': ['--train-size', '2000', '--epochs', '3', '--number-slots',
                                 '--topk', '2'],
    'post6_mt5_title_generation': ['--examples', '1000', '--epochs', '3'],
    'post7_gpt_xiangqi': ['--steps', '40', '--batch-size', '16', '--maxlen', '256',
                          '--random-games', '2', '--engine-games', '1', '--max-plies', '40',
                          '--probe-positions', '6', '--curve-games', '2'],
}


def load_example(name):
    path = os.path.join(ROOT, 'examples', name + '.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def trained_run(tmp_path_factory):
    """``trained_run(example) -> (folder, metrics)``: the example trained on
    its TRAINING settings into ``<session runs root>/<example>``, once."""
    root = tmp_path_factory.mktemp('runs')
    done = {}

    def train(example):
        if example not in done:
            from bert4keras_blog.app.demo import run_examples
            row, = run_examples(lambda name: ['--quick'] + TRAINING[name], only=[example],
                                runs=str(root))
            assert not row['failed'], 'the demo runner failed on %s' % example
            done[example] = root / example, row['metrics']
        return done[example]
    train.root = root
    return train


@pytest.fixture(scope='module')
def trained_server(trained_run):
    """The web page's server over the three trained runs it uses."""
    from web_tour import start_server
    for example in TRAINING:
        trained_run(example)
    server, url = start_server(trained_run.root)
    server.url = url
    yield server
    server.shutdown()
    server.server_close()
