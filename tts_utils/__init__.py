"""tts-study: compute-optimal test-time scaling as a reproducible notebook study."""

__version__ = "0.1.0"
