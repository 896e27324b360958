"""packr-replay's benchmarks: ``python -m bench`` runs them all and writes BENCHMARKS.md.

Each script here also runs on its own (``python bench/bench_record.py --help``) and
exposes a ``run``-style function returning a dict, which the runner (:mod:`bench.runner`)
calls in a child process per benchmark. Every figure is a ratio of two things measured
side by side in the same run (median and spread over repeated rounds), checked against
its goal.
"""
