"""The quality study, `python -m benchmarks.quality`: does sharpening help? Accuracy of best-of-N,
majority vote, greedy and the live strategies on the quality tasks (run.py has the details)."""
