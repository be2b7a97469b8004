"""The analysis pipeline: step plugins, the worker that runs them on one original, the runner."""
