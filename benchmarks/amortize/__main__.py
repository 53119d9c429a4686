"""`python -m benchmarks.amortize`: runs the study (see run.py)."""

from benchmarks.amortize.run import main

if __name__ == "__main__":
    raise SystemExit(main())
