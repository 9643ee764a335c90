"""The errors llenergymeasure raises, each carrying the exit code of the CLI contract.

    LLEMError
     +-- ConfigError       exit 2  the config is wrong; nothing was loaded or measured
     +-- PreFlightError    exit 1  the config is valid but this machine cannot run it
     +-- BackendError      exit 1  the inference backend failed (load, generate)
     +-- ExperimentError   exit 1  the measurement itself failed
"""

from __future__ import annotations


class LLEMError(Exception):
    """Base class: a message meant for the user, and the exit code for it."""

    exit_code: int = 1


class ConfigError(LLEMError):
    """A config problem. ``problems`` holds one line per problem, each naming where and what."""

    exit_code = 2

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class PreFlightError(LLEMError):
    """Everything that stops this machine from running a valid config, reported at once."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"Pre-flight check failed ({count} problem{'s' if count != 1 else ''}):\n{lines}")


class BackendError(LLEMError):
    """The inference backend failed to load the model or to generate."""


class ExperimentError(LLEMError):
    """The measurement failed (energy meter fault, no tokens generated, ...)."""
