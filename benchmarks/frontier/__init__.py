"""The sharpening frontier: how likely (raw sequence log-likelihood) the returned answers are, per
generated token and per second, for greedy decoding, best-of-n at several n and temperatures, the
stepwise samplers, `beam`, and vLLM's own beam search as the classical maximiser's anchor."""
