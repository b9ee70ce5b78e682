"""Each example's main() on small settings: it trains and its metric is real."""
import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name):
    path = os.path.join(ROOT, 'examples', name + '.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_post3_learns_to_solve_and_the_cli_uses_the_run(tmp_path, capsys):
    example = load('post3_math_word_problems')
    metrics = example.main(['--train-size', '2000', '--epochs', '3', '--number-slots',
                            '--topk', '2', '--run-dir', str(tmp_path)])
    # Measured 0.78 after 2 epochs and 1.0 after 6 with these settings.
    assert metrics['heldout_accuracy'] >= 0.8, metrics
    assert metrics['epochs'][-1]['loss'] < metrics['epochs'][0]['loss']
    with open(tmp_path / 'metrics.json') as f:
        assert json.load(f)['headline'] == 'heldout_accuracy'
    assert os.path.exists(tmp_path / 'best.weights.h5')

    from bert4keras_blog import cli
    capsys.readouterr()
    problem = '一个长方形长12厘米，宽5厘米，它的面积是多少平方厘米？'
    assert cli.main(['math', problem, '--run', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'x=12*5' in out and 'answer: 60' in out


def test_math_cli_without_a_run_says_how_to_train(tmp_path, capsys):
    from bert4keras_blog import cli
    assert cli.main(['math', '1+1等于几？', '--run', str(tmp_path)]) == 2
    assert 'post3_math_word_problems.py' in capsys.readouterr().err


@pytest.mark.slow
def test_post8_rates_follow_the_analysis_and_gates_learn_long_recall(tmp_path):
    example = load('post8_rnn_gradients')
    metrics = example.main(['--units', '16', '--steps', '60', '--lags', '40',
                            '--train-steps', '250', '--run-dir', str(tmp_path)])
    rates = {r['setting']: r for r in metrics['decay_rates']}
    simple = [rates['SimpleRNN rho=%s' % rho]['fitted_rate'] for rho in ('0.9', '1.0', '1.1')]
    assert simple[0] < simple[1] < simple[2]
    for rho in ('0.9', '1.0', '1.1'):  # rho times the RMS tanh slope predicts the rate
        row = rates['SimpleRNN rho=%s' % rho]
        assert abs(row['fitted_rate'] - row['predicted_rate']) < 0.03, row
    lstm = [rates['LSTM forget bias %d' % b]['fitted_rate'] for b in (0, 1, 5)]
    assert lstm[0] < lstm[1] < lstm[2] and lstm[2] > 0.95
    assert rates['GRU update bias 5']['fitted_rate'] > rates['GRU']['fitted_rate']
    recall = {r['cell']: r['accuracy'] for r in metrics['recall']}
    assert recall['GRU, gate bias 5'] > 0.9 and recall['LSTM, gate bias 5'] > 0.9
    assert os.path.getsize(tmp_path / 'jacobian_norms.png') > 10000


@pytest.mark.slow
def test_post4_trains_both_ways_with_equal_steps(tmp_path):
    example = load('post4_teaforn')
    metrics = example.main(['--train-size', '1000', '--epochs', '2', '--n', '2', '--topk', '2',
                            '--run-dir', str(tmp_path)])
    plain, teaforn = metrics['runs']
    assert (plain['n'], teaforn['n']) == (1, 2)
    for run in (plain, teaforn):
        losses = [h['loss'] for h in run['history']]
        assert len(losses) == 2 and losses[1] < losses[0]
        assert run['greedy_token_accuracy'] > 0.15  # chance is ~0.05: it learned something
        assert 0 <= run['greedy_accuracy'] <= 1 and 0 <= run['beam_accuracy'] <= 1
    assert metrics['headline'] == 'teaforn_greedy_accuracy'
    assert os.path.getsize(tmp_path / 'validation_accuracy.png') > 5000


@pytest.mark.slow
def test_post5_shows_collapse_without_stop_gradient(tmp_path):
    example = load('post5_simsiam')
    metrics = example.main(['--epochs', '8', '--variants', 'SimSiam', 'no stop-gradient',
                            '--run-dir', str(tmp_path)])
    final = metrics['final']
    assert final['no stop-gradient']['std'] < 0.01  # collapsed to (nearly) one point
    assert final['no stop-gradient']['loss'] < -0.99
    assert final['SimSiam']['std'] > 5 * final['no stop-gradient']['std']
    assert final['SimSiam']['knn'] > final['no stop-gradient']['knn'] + 0.1
    assert os.path.getsize(tmp_path / 'collapse.png') > 10000


@pytest.mark.slow
def test_post2_larger_steps_reach_equal_loss_with_smaller_gradients(tmp_path):
    example = load('post2_learning_rate')
    metrics = example.main(['--rates', '0.1', '1.0', '--target-loss', '0.1',
                            '--run-dir', str(tmp_path)])
    runs = {r['run']: r for r in metrics['runs']}
    small, large = runs['GD h=0.1'], runs['GD h=1']
    penalised = runs['GD h=0.1 + penalty 0.25 (= 1/4)']
    assert abs(small['train_loss'] - large['train_loss']) < 0.01  # compared at equal loss
    assert large['steps'] < small['steps'] / 5
    assert large['sharpness'] < small['sharpness']  # the flatter end point
    assert penalised['grad_norm_sq_at_loss']['0.2'] < small['grad_norm_sq_at_loss']['0.2']
    assert os.path.getsize(tmp_path / 'gradient_norm.png') > 10000


@pytest.mark.slow
def test_post6_trims_then_fine_tunes_mt5(tmp_path):
    example = load('post6_mt5_title_generation')
    metrics = example.main(['--examples', '1000', '--epochs', '3', '--run-dir', str(tmp_path)])
    losses = [h['loss'] for h in metrics['epochs']]
    assert losses[-1] < losses[0] - 0.5, losses
    assert metrics['rouge-1'] > 0.1  # nouns copied from the sentence, character overlap
    assert 259 < metrics['vocabulary'] < 5000  # the trimmed vocabulary
    assert os.path.exists(tmp_path / 'keep_tokens.json')
    assert os.path.exists(tmp_path / 'sentencepiece.trimmed.model')


@pytest.mark.slow
def test_post1_measures_costs_pretrains_and_fine_tunes(tmp_path):
    example = load('post1_albert_electra')
    metrics = example.main(['--pretrain-steps', '20', '--finetune-steps', '40', '--no-memory',
                            '--cost-len', '32', '--run-dir', str(tmp_path)])
    costs = {r['name']: r for r in metrics['cost']}
    assert costs['ALBERT']['parameters'] < 0.5 * costs['BERT']['parameters']
    # Throughput parity is asserted in tests/test_pretrained.py with longer timing.
    assert all(r['training_tokens_per_s'] > 0 for r in metrics['cost'])
    assert {r['model'] for r in metrics['finetuning']} == {
        'BERT', 'ALBERT', 'ALBERT-unshared', 'ELECTRA discriminator'}
    assert all(0.3 < r['accuracy'] <= 1 for r in metrics['finetuning'])
    assert metrics['pretraining']['electra']['rtd_accuracy'] > 0.5
    assert len(metrics['replaced_token_detection']) == 2
    assert os.path.getsize(tmp_path / 'cost.png') > 10000


@pytest.mark.slow
def test_post7_trains_plays_legal_games_and_the_cli_loads_it(tmp_path):
    example = load('post7_gpt_xiangqi')
    metrics = example.main(['--steps', '80', '--batch-size', '16', '--maxlen', '256',
                            '--random-games', '2', '--engine-games', '1', '--max-plies', '80',
                            '--run-dir', str(tmp_path)])
    history = metrics['history']
    assert [h['fraction'] for h in history] == [1 / 8, 1 / 4, 1 / 2, 1]
    # Measured 2.10 after these 80 steps; untrained ln(23) = 3.14, uniform over 19 characters 2.94.
    assert history[-1]['valid_loss'] < 2.6
    random_games = metrics['results']['random']
    assert random_games['win'] + random_games['draw'] + random_games['loss'] == 2
    assert metrics['results']['engine']['games'] == 1
    assert 0 <= metrics['results']['legal_top1_rate'] <= 1
    assert os.path.exists(tmp_path / 'loss_by_stage.png')
    from bert4keras_blog.xiangqi.lm import load_move_model
    load_move_model(str(tmp_path / 'model'))
