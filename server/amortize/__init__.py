"""Amortized sharpening: request traces, the SFT set, LoRA training and adapter checks.

Training dependencies (torch, transformers, peft) are imported lazily by the modules that need
them, so the core server install stays light.
"""
