"""``python -m bench``: every benchmark side by side, into BENCHMARKS.md and results.json."""

from bench.runner import main

raise SystemExit(main())
