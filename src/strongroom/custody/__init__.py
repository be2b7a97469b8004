"""The chain of custody: a hash-chained, Ed25519-signed, append-only event log."""
