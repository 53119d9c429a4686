"""The amortization study, `python -m benchmarks.amortize`: is one sample of the SFT-sharpened
adapter as good as the base model's best-of-N? (run.py has the details)."""
