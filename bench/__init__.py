"""The benchmarks of ``make bench`` (``python -m bench``), one module per benchmark, each writing
its section of ``docs/bench.md``; the stand-in engine they use (``bench.simulate``). Not part of
the installed package: run from a clone."""
