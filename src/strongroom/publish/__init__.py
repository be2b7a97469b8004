"""Redacted publication: faces found and tracked, hidden on every frame, the file signed
with its provenance (C2PA) and linked to the original on the custody record."""
