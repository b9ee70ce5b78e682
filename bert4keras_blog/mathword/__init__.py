"""Post 3: Seq2Seq solves primary-school maths word problems (ape210k).

A UniLM reads a Chinese word problem and writes an expression such as
``x=150*20%/5%-150``; the expression is evaluated exactly and safely (never
with ``eval``) and compared with the answer.

Public API:
    normalize(expression) -> str          canonical ASCII form
    evaluate(expression) -> Fraction      exact, bounded, no eval
    answers_match(predicted, gold) -> bool
    to_text(value) -> str
    load_ape210k(path) -> records with .report (rejected lines with numbers)
    generate(n, seed=0) -> synthetic ape210k-format problems (31 templates)
    heldout_split(train_size, seed) -> train, valid, test (unseen numbers)
    write_jsonl(records, path)
    ProblemCodec: tokenizer glue (number slots, expression characters)
    Seq2SeqGenerator: bert4keras DataGenerator of encoded (source, target) pairs
    MathSolver: decode with the UniLM, evaluate safely, accuracy
    solve(text, solver) -> (expression, value)
"""
from bert4keras_blog.mathword.expression import (
    LIMITS, answers_match, evaluate, normalize, parse, to_text)
from bert4keras_blog.mathword.ape210k import FIELDS, LoadReport, load_ape210k
from bert4keras_blog.mathword.synthetic import TEMPLATES, generate, heldout_split, write_jsonl

__all__ = ['normalize', 'evaluate', 'answers_match', 'to_text', 'parse', 'LIMITS',
           'load_ape210k', 'LoadReport', 'FIELDS', 'generate', 'heldout_split', 'write_jsonl',
           'TEMPLATES']
