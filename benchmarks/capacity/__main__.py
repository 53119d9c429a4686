"""`python -m benchmarks.capacity`: runs the sweep (see run.py)."""

from benchmarks.capacity.run import main

if __name__ == "__main__":
    raise SystemExit(main())
