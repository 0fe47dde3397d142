"""Errors of the sandbox: one family, so callers catch `SandboxError`."""
from __future__ import annotations


class SandboxError(RuntimeError):
    """The sandbox could not be brought up, or a command in it failed."""


class ImageError(SandboxError):
    """The sandbox image could not be built, read or unpacked."""
