"""whetstone's benchmarks: one package or module per study, shared helpers in common/, results in results/."""
