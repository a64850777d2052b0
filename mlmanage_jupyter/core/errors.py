"""Exceptions raised by the core engine.

Every error a user can cause is a subclass of :class:`MlManageError` and carries one
message that names what to fix. The magics turn them into ``UsageError`` (no traceback)
and the CLI into a one-line ``error: ...`` with exit code 2.
"""

from __future__ import annotations


class MlManageError(Exception):
    """Base class of every error this package raises on purpose."""


class ValidationError(MlManageError, ValueError):
    """Bad input: a malformed name, a missing file, a tag that is not a string, ..."""


class ReadOnlyWorkspaceError(MlManageError, PermissionError):
    """A write (register, deploy, tag, delete, ...) to a workspace opened read-only: its folder
    or database can't be written (permissions, a read-only mount). Listing and reading work."""


class NotFoundError(MlManageError, LookupError):
    """A model, version, image or service that does not exist."""


class ModelNotFoundError(NotFoundError):
    """Raised by ``Model(...)`` and ``Model.get_model_path(...)`` (Azure: ModelNotFoundException)."""


class InUseError(MlManageError):
    """Deleting something an image or a service still uses."""


class ArtifactCorruptError(MlManageError):
    """An artifact's bytes no longer match the sha256 recorded at registration."""


class WebserviceException(MlManageError):
    """A deployment or web service operation failed (Azure ML's name for it).

    ``status_code`` (HTTP status of a failed scoring call, else None) and ``request_id`` (the
    engine's id of that request, to find it in ``service.get_logs()``) when a call failed."""

    status_code: int | None = None
    request_id: str | None = None


class ServiceNotFoundError(NotFoundError, WebserviceException):
    """No service with that name."""


class DeploymentFailedError(WebserviceException):
    """The service did not become Healthy; ``logs`` holds what the service printed."""

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message)
        self.logs = logs


class ComputeTargetException(MlManageError):
    """A compute target operation failed: not attached, or cloud provisioning asked for
    (Azure ML's name: ``azureml.core.compute_target.ComputeTargetException``)."""
