"""The running task's identity, as cc.primitives tracks it.

Kept under the names the manager code uses; the lookup itself (the backend's
native task, found without importing any backend) lives in cc.primitives.
"""

from __future__ import annotations

from cc.primitives import current_task_key as current_task
from cc.primitives import task_name as describe_task

__all__ = ["current_task", "describe_task"]
