"""Media tools: the one runner for external binaries, probing, and the shared decode pass."""
