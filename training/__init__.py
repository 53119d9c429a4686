"""Amortized sharpening: request traces, the SFT set, SFT- and RL-sharpening on TRL, adapter checks.

Training dependencies (torch, transformers, peft, trl) are imported lazily by the modules that
need them, so the core server install stays light.
"""
