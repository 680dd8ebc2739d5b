"""The framework's bookkeeping of its tasks: launches waiting for an offer and launched tasks."""
import asyncio
from dataclasses import dataclass, field
from typing import Callable, Optional

from ._proto import common_pb2
from .resources import ResourceRequest

# States in which the task may still run (TASK_UNREACHABLE: its agent is out of touch, the task
# may come back; a framework must not relaunch it).
LIVE_STATES = frozenset({
    common_pb2.TASK_STAGING, common_pb2.TASK_STARTING, common_pb2.TASK_RUNNING,
    common_pb2.TASK_KILLING, common_pb2.TASK_UNREACHABLE,
})


def is_terminal(state):
    """Whether a known state means the task no longer runs (None: not known yet)."""
    return state is not None and state != common_pb2.TASK_STATE_UNSPECIFIED and state not in LIVE_STATES


def state_name(state):
    return "unknown" if state is None else common_pb2.TaskState.Name(state)


def exit_status(status):
    """The hub's poll() answer for a task that ended: its exit code when it exited, else 0 for a
    task that finished and 1 for one that failed, was killed or is gone."""
    if status is not None and status.HasField("exit_code"):
        return status.exit_code
    return 0 if status is not None and status.state == common_pb2.TASK_FINISHED else 1


@dataclass
class TrackedTask:
    """A task the framework launched or adopted from a spawner's saved state."""
    task_id: str
    role: str
    agent_id: str = ""
    # None until the master has told us anything (an adopted task before reconciliation).
    state: Optional[int] = None
    status: Optional[object] = None

    def describe(self):
        text = f"task {self.task_id} is {state_name(self.state)}"
        if self.status is not None and self.status.message:
            text += f": {self.status.message}"
        return text


@dataclass
class PendingLaunch:
    """A server waiting for an offer in its role that can hold it.

    build(offer, ports) returns the TaskInfo (command, env, labels); the framework fills in the
    task id, agent and the resources carved out of the offer.
    """
    task_id: str
    role: str
    request: ResourceRequest
    build: Callable
    launched: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    # Why the latest offer in the role did not fit (for the user, when the launch times out).
    last_shortfall: str = ""
