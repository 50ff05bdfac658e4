"""One thin module per job: what to check, which stages, where to write, what to report.

``generate``: the generation job (``jobs.generate``); ``filter``: re-judging a dataset
(``jobs.filter``); ``plan``: the generation job's plan, which ``--dry-run`` prints.
"""
