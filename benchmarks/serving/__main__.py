"""`python -m benchmarks.serving`: runs the study (see run.py)."""

from benchmarks.serving.run import main

if __name__ == "__main__":
    raise SystemExit(main())
