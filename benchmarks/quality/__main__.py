"""`python -m benchmarks.quality`: runs the study (see run.py)."""

from benchmarks.quality.run import main

if __name__ == "__main__":
    raise SystemExit(main())
