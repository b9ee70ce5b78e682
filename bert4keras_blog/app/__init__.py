"""What users run, on top of the posts: the ``bert4keras-blog`` command
(``cli``), the local web page (``web``), ``make demo`` (``demo``) and the
docs' numbers rendered from the runs (``results_pages``).
"""
