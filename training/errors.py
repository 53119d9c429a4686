"""The training room's one error tree: every error its commands report derives from TrainingError."""

from __future__ import annotations


class TrainingError(ValueError):
    """A run that cannot start or resume as asked; the message says why and what to do."""


class SftDataError(TrainingError):
    """The prompts or traces cannot make an SFT set; the message says why."""
