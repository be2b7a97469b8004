"""Ingest: sources (folders, mounted drives, disk images) → originals, sightings, custody."""

from strongroom.ingest.ingestor import IngestReport, ingest

__all__ = ["IngestReport", "ingest"]
