"""SchedulerSpawner: JupyterHub starts each user's single-user server as a task on the cluster."""
import asyncio
import os
import uuid

import grpc
from jupyterhub.spawner import Spawner
from traitlets import Bool, Float, Integer, Unicode, Enum, default

from ._proto import common_pb2
from .connection import FrameworkSettings, read_token
from .framework import HubFramework
from .resources import request_from_limits, task_id_for, user_role
from .state import ServerState
from .tasks import PendingLaunch, exit_status, is_terminal, state_name


class SchedulerSpawner(Spawner):
    """Runs the single-user server (`cmd` + `args`, with the env of get_env()) as a task of the
    hub's framework, in the role `ROLE_PREFIX/USER`, with cpus and mem from cpu_limit/mem_limit."""

    master = Unicode(
        help="The master's HOST:PORT, or several separated by commas (the leader is followed). "
             "Default: $SCHED_MASTER, else 127.0.0.1:5050.").tag(config=True)

    @default("master")
    def _default_master(self):
        return os.environ.get("SCHED_MASTER", "127.0.0.1:5050")

    framework_name = Unicode("jupyterhub", help="The framework's name, as operators see it.").tag(config=True)
    role_prefix = Unicode(
        "notebooks", help="Servers run in the role PREFIX/USER, so quotas, weights and metering are per user.").tag(config=True)
    failover_timeout = Float(
        7 * 24 * 3600, help="Seconds the master keeps the hub's tasks while the hub is away (restart, upgrade). "
                            "At most the master's --max-failover-timeout.").tag(config=True)
    framework_user = Unicode("", help="Unix user tasks run as when task_user is empty; empty: the agent's user.").tag(config=True)
    task_user = Unicode(
        "", help="Unix user a server runs as ('{username}' is replaced by the hub user's name); "
                 "empty: framework_user.").tag(config=True)
    principal = Unicode("", help="The framework's principal, when the master authenticates.").tag(config=True)
    tls_ca = Unicode("", help="A CA file (PEM) to verify the master over TLS; empty: plain h2c.").tag(config=True)
    token = Unicode("", help="A bearer token for the master; default: token_file, else $SCHED_TOKEN.").tag(config=True)
    token_file = Unicode("", help="A file holding the bearer token.").tag(config=True)
    default_cpus = Float(1.0, help="Cores when neither cpu_limit nor cpu_guarantee is set.").tag(config=True)
    default_mem_mib = Integer(1024, help="MiB of memory when neither mem_limit nor mem_guarantee is set.").tag(config=True)
    disk_mib = Integer(0, help="MiB of disk to ask for (0: none).").tag(config=True)
    kill_grace_seconds = Float(5.0, help="Between SIGTERM and SIGKILL when a server is stopped.").tag(config=True)
    stop_timeout = Float(60.0, help="How long stop() waits for the task to end.").tag(config=True)
    reconcile_timeout = Float(
        30.0, help="How long poll() waits for the master's answer about a task adopted after a hub restart; "
                   "without an answer the server is assumed to run.").tag(config=True)
    connect_timeout = Float(30.0, help="How long to wait for the subscription to the master.").tag(config=True)
    decline_seconds = Float(5.0, help="How long a declined agent is not offered again to the hub.").tag(config=True)
    kill_orphans = Bool(
        True, help="Kill tasks of the hub's framework that no server of the hub owns (found by reconciliation).").tag(config=True)
    server_host_from = Enum(
        ["agent_address", "hostname"], "agent_address",
        help="How the hub reaches a server: the host of the address the agent advertises to the "
             "master (which the cluster can reach), or the hostname the agent reports.").tag(config=True)

    @default("ip")
    def _default_ip(self):
        # The server runs on another machine: listen on every interface of the agent.
        return "0.0.0.0"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._server_state = None
        self._pending = None

    # ---- the hub's Spawner API ----

    def load_state(self, state):
        super().load_state(state)
        self._server_state = ServerState.from_dict(state)
        if self._server_state is not None:
            self.port = self._server_state.port
            self._framework().adopt(self._server_state)

    def get_state(self):
        state = super().get_state()
        if self._server_state is not None:
            framework_id = self._framework().framework_id or self._server_state.framework_id
            state.update(ServerState(**{**self._server_state.__dict__, "framework_id": framework_id}).to_dict())
        return state

    def clear_state(self):
        super().clear_state()
        if self._server_state is not None:
            self._framework().forget(self._server_state.task_id)
        self._server_state = None

    async def start(self):
        request = request_from_limits(self.cpu_limit, self.mem_limit, self.cpu_guarantee, self.mem_guarantee,
                                      self.default_cpus, self.default_mem_mib, self.disk_mib)
        framework = self._framework()
        role = user_role(self.role_prefix, self.user.name, self.name)
        task_id = task_id_for(self.user.name, self.name, uuid.uuid4().hex[:8])
        placed = {}

        def build(offer, ports):
            self.port = ports[0]
            host = offer.hostname
            if self.server_host_from == "agent_address" and offer.agent_address:
                host = offer.agent_address.rpartition(":")[0] or offer.hostname
            placed.update(host=host, port=ports[0], agent_id=offer.agent_id)
            return self._task_info(task_id)

        self._server_state = ServerState(framework_id=framework.framework_id, task_id=task_id, role=role)
        self.log.info("starting %s's server as task %s in role %s (%s)", self.user.name, task_id, role, request.describe())
        pending = self._pending = PendingLaunch(task_id=task_id, role=role, request=request, build=build)
        try:
            await framework.launch(pending, self.connect_timeout)
        except asyncio.TimeoutError:
            raise RuntimeError(f"cannot subscribe to the master at {self.master} within {self.connect_timeout:.0f} s: "
                               "check c.SchedulerSpawner.master and that the master runs") from None
        except grpc.aio.AioRpcError as e:
            # The master did not take the framework's roles with this user's role added (refused,
            # e.g. past its --max-roles-per-framework, or unreachable): the spawn fails now with
            # the master's reason instead of waiting for an offer that cannot come.
            raise RuntimeError(f"the master did not take role {role} for {self.user.name}'s server "
                               f"({e.code().name}: {e.details()})") from None
        except asyncio.CancelledError:
            raise RuntimeError(f"the launch of {task_id} was cancelled before an offer could hold it"
                               + (f" (last offer: {pending.last_shortfall})" if pending.last_shortfall else ""))
        finally:
            self._pending = None
        self._server_state = ServerState(framework_id=framework.framework_id, task_id=task_id, role=role,
                                         agent_id=placed["agent_id"], host=placed["host"], port=placed["port"])
        task = await framework.wait_for(
            task_id, lambda t: t.state == common_pb2.TASK_RUNNING or is_terminal(t.state), timeout=None)
        if is_terminal(task.state):
            raise RuntimeError(f"{self.user.name}'s server did not start: {task.describe()}")
        self.log.info("%s's server runs as %s at %s:%s", self.user.name, task_id, placed["host"], placed["port"])
        return placed["host"], placed["port"]

    async def progress(self):
        """What the spawn-pending page shows: waiting for an offer (and why the latest did not
        fit), then the task's state until it runs."""
        framework = self._framework()
        last = None
        while True:
            message, done = self._progress_message(framework)
            if message != last:
                yield {"message": message}
                last = message
            if done:
                return
            await framework.changed(timeout=1.0)

    def _progress_message(self, framework):
        pending = self._pending
        if pending is not None:
            text = f"waiting for an offer in role {pending.role} that holds {pending.request.describe()}"
            if pending.last_shortfall:
                text += f"; the latest did not fit ({pending.last_shortfall})"
            return text, False
        if self._server_state is None:
            return "preparing the launch", False
        task = framework.task(self._server_state.task_id)
        if task is None or is_terminal(task.state):
            return (task.describe() if task else "the task is gone"), True
        where = f"{self._server_state.host}:{self._server_state.port}"
        if task.state == common_pb2.TASK_RUNNING:
            return f"task {task.task_id} runs at {where}; waiting for the notebook server to answer", True
        return f"task {task.task_id} on {where} is {state_name(task.state)}", False

    async def poll(self):
        if self._server_state is None:
            return 0
        framework = self._framework()
        task = framework.task(self._server_state.task_id)
        if task is None:
            return 1
        try:
            state = await framework.reconcile(task.task_id, self.reconcile_timeout)
        except (asyncio.TimeoutError, grpc.aio.AioRpcError):
            self.log.warning("cannot reach the master to check %s; assuming %s's server still runs",
                             task.task_id, self.user.name)
            return None
        if state is None:
            self.log.warning("the master has no answer yet about %s; assuming %s's server still runs",
                             task.task_id, self.user.name)
            return None
        if is_terminal(state):
            self.log.info("%s's server ended: %s", self.user.name, task.describe())
            return exit_status(task.status)
        return None

    async def stop(self, now=False):
        if self._server_state is None:
            return
        task_id = self._server_state.task_id
        grace = 0.0 if now else self.kill_grace_seconds
        try:
            task = await self._framework().kill(task_id, grace, self.stop_timeout)
        except asyncio.TimeoutError:
            self.log.error("%s's server (task %s) did not end within %.0f s of the kill; "
                           "check the task with `schedctl tasks`", self.user.name, task_id, self.stop_timeout)
            return
        except grpc.aio.AioRpcError as e:
            raise RuntimeError(f"could not kill {self.user.name}'s server (task {task_id}): the master at "
                               f"{self.master} answered {e.code().name}: {e.details()}") from None
        if task is not None:
            self.log.info("stopped %s's server: task %s is %s", self.user.name, task_id, state_name(task.state))

    # ---- helpers ----

    def _task_info(self, task_id):
        """The task for the server: the hub's command and env (get_env() after the port is known)."""
        argv = list(self.cmd) + list(self.get_args())
        if not argv:
            raise ValueError("the spawner's cmd is empty: set c.Spawner.cmd = ['jupyterhub-singleuser']")
        env = {k: str(v) for k, v in self.get_env().items()}
        command = common_pb2.CommandInfo(shell=False, value=argv[0], arguments=argv, env=env,
                                         user=self.task_user.format(username=self.user.name) if self.task_user else "")
        task = common_pb2.TaskInfo(
            name=f"jupyterhub {self.user.name}" + (f":{self.name}" if self.name else ""),
            command=command, container=common_pb2.ContainerInfo(type=common_pb2.ContainerInfo.PROCESS),
            labels={"jupyterhub.user": self.user.name, "jupyterhub.server": self.name or ""})
        task.kill_policy.grace_period_seconds = self.kill_grace_seconds
        return task

    def _framework(self):
        settings = FrameworkSettings(
            masters=FrameworkSettings.parse_masters(self.master), name=self.framework_name,
            role_prefix=self.role_prefix, failover_timeout=self.failover_timeout, user=self.framework_user,
            principal=self.principal, tls_ca=self.tls_ca, token=read_token(self.token, self.token_file),
            decline_seconds=self.decline_seconds, kill_orphans=self.kill_orphans)
        return HubFramework.shared(settings, self.log)
