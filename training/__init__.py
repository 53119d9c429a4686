"""Amortized sharpening on top of the serving core: the SFT set, SFT- and RL-sharpening on TRL, adapter cards.

Training dependencies (torch, transformers, peft, trl, datasets) are imported lazily by the functions
that need them, so the `whetstone` command (training/cli.py) stays light for serving.
"""
