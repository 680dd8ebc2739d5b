"""What a spawner keeps in the hub's database (Spawner.get_state / load_state).

The hub stores it as JSON; after a restart it hands it back, and the spawner finds its task again
with it: the framework id (to re-subscribe as the same framework, which keeps its tasks while the
hub is away for less than the failover timeout), the task and agent ids (to reconcile the task),
the role and the server's address.
"""
from dataclasses import asdict, dataclass
from typing import Optional

VERSION = 1


@dataclass(frozen=True)
class ServerState:
    framework_id: str
    task_id: str
    agent_id: str = ""
    role: str = ""
    host: str = ""
    port: int = 0

    def to_dict(self):
        """The JSON-ready form stored by the hub."""
        return {"version": VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, state) -> Optional["ServerState"]:
        """The state saved by to_dict, or None when there is none (a server never started, or
        stopped: the hub clears state after a stop). Raises ValueError for a state that cannot be
        ours, naming the field, so a hub configured with another spawner before fails clearly."""
        if not state:
            return None
        if not isinstance(state, dict):
            raise ValueError(f"spawner state is a {type(state).__name__}, expected a dict")
        if not state.get("task_id"):
            return None
        version = state.get("version", VERSION)
        if version != VERSION:
            raise ValueError(f"spawner state has version {version!r}; this SchedulerSpawner reads version {VERSION}: "
                             "stop the server with the spawner version that started it")
        values = {}
        for name, kind in (("framework_id", str), ("task_id", str), ("agent_id", str), ("role", str),
                           ("host", str), ("port", int)):
            value = state.get(name, cls.__dataclass_fields__[name].default if name not in ("framework_id", "task_id") else "")
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError(f"spawner state field {name!r} is {value!r}; expected a {kind.__name__}")
            values[name] = value
        if not values["framework_id"]:
            raise ValueError("spawner state has a task_id but no framework_id: the task cannot be reconciled")
        if not 0 <= values["port"] <= 65535:
            raise ValueError(f"spawner state field 'port' is {values['port']}; expected 0-65535")
        return cls(**values)
