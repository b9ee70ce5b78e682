"""Error messages name the place and what was expected."""
from bert4keras_blog.errors import (
    BlogError, CheckpointMismatchError, DataFormatError, IllegalMoveError, MathExpressionError)


def test_data_format_error_names_file_and_line():
    error = DataFormatError('train.json', 812, "field 'equation' is missing")
    assert str(error) == "train.json line 812: field 'equation' is missing"
    assert isinstance(error, (BlogError, ValueError)) and error.line == 812


def test_checkpoint_mismatch_names_both_shapes():
    error = CheckpointMismatchError('m.ckpt', 'bert/x/kernel', layer='Transformer-3-FeedForward',
                                    found=(768, 3072), expected=(512, 2048))
    assert str(error).startswith(
        "layer 'Transformer-3-FeedForward': checkpoint variable 'bert/x/kernel' "
        "has shape (768, 3072), model expects (512, 2048)")
    assert "has no variable 'v'" in str(CheckpointMismatchError('m.ckpt', 'v', reason='missing'))


def test_expression_and_move_errors_say_where():
    assert 'position 4' in str(MathExpressionError('1+2*', 4, 'operand expected'))
    assert str(IllegalMoveError('h2e9', 'not legal here', game=3, ply=17)) == \
        "game 3, ply 17: move 'h2e9': not legal here"
    assert str(IllegalMoveError('h2e9', 'not legal here', game=3, ply=17, path='g.txt',
                                line=5)) == "g.txt line 5, game 3, ply 17: move 'h2e9': not legal here"
