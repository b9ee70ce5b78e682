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
    LIMITS: the evaluator's bounds; parse(expression) -> syntax tree
    LoadReport, FIELDS: what load_ape210k kept and rejected; the fields read
    TEMPLATES: the synthetic problem templates
    ProblemCodec: tokenizer glue (number slots, expression characters)
    Seq2SeqGenerator: bert4keras DataGenerator of encoded (source, target) pairs
    MathSolver: decode with the UniLM, evaluate safely, accuracy
    load_solver(folder, topk=3) -> MathSolver trained by the post-3 example
    math_vocabulary(dict_path, trim) -> (token_dict, keep_tokens)
    token_accuracy(predicted, gold): share of the gold characters matched by position
    SLOTS: the number-slot tokens [unused1] ... [unused9]
    solve(text, solver) -> (expression, value)
"""
from bert4keras_blog.mathword.answers import answers_match, normalize, to_text
from bert4keras_blog.mathword.expression import LIMITS, evaluate, parse
from bert4keras_blog.mathword.ape210k import FIELDS, LoadReport, load_ape210k
from bert4keras_blog.mathword.synthetic import TEMPLATES, generate, heldout_split, write_jsonl
from bert4keras_blog.mathword.solver import (
    SLOTS, MathSolver, ProblemCodec, Seq2SeqGenerator, load_solver, math_vocabulary, solve,
    token_accuracy)

__all__ = ['normalize', 'evaluate', 'answers_match', 'to_text', 'parse', 'LIMITS',
           'load_ape210k', 'LoadReport', 'FIELDS', 'generate', 'heldout_split', 'write_jsonl',
           'TEMPLATES', 'ProblemCodec', 'Seq2SeqGenerator', 'MathSolver', 'load_solver', 'solve',
           'math_vocabulary', 'token_accuracy', 'SLOTS']
