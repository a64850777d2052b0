"""Metadata store (SQL through SQLAlchemy) and artifact store (content-addressed files)."""

from mlmanage_jupyter.core.store.artifacts import ArtifactStore, LocalArtifactStore

__all__ = ["ArtifactStore", "LocalArtifactStore"]
