"""One framework per hub: the subscription to the master that every spawner of the hub shares.

The framework subscribes with the MULTI_ROLE capability in the role prefix (`notebooks`, always
suppressed) plus one role per user with a server (`notebooks/USER`). A user's role is suppressed
unless a launch in it waits for an offer, so the hub holds no offers while nothing is starting.
Its failover timeout keeps the tasks running while the hub is away; a restarted hub re-subscribes
with the framework id saved in the spawners' state and reconciles the tasks it adopted from it.
Status updates are acknowledged as they arrive. Nothing here blocks the hub's event loop.
"""
import asyncio
import logging
import socket

import grpc

from ._proto import common_pb2, scheduler_pb2, scheduler_pb2_grpc
from .connection import FrameworkSettings, MasterConnection
from .resources import shortfall, take
from .state import ServerState
from .tasks import LIVE_STATES, PendingLaunch, TrackedTask, is_terminal, state_name

_RETRY_FIRST, _RETRY_MAX = 0.2, 10.0


class HubFramework:
    """The hub's framework. Use shared(settings) so that all spawners of a hub use one."""

    _shared = {}

    @classmethod
    def shared(cls, settings: FrameworkSettings, log=None):
        framework = cls._shared.get(settings)
        if framework is None:
            framework = cls._shared[settings] = cls(settings, log)
        return framework

    def __init__(self, settings: FrameworkSettings, log=None):
        self.settings = settings
        self.log = log or logging.getLogger("sched_jupyterhub")
        self.framework_id = ""
        self._stream_id = ""
        self._connection = MasterConnection(settings)
        self._stub = None
        self._subscribed = asyncio.Event()
        self._changed = asyncio.Condition()
        self._roles_lock = asyncio.Lock()
        self._tasks = {}
        self._pending = {}
        self._sent_roles = None
        self._runner = None
        self._heartbeat_interval = 15.0

    # ---- what spawners call ----

    def adopt(self, state: ServerState):
        """Takes over a task from a spawner's saved state (after a hub restart). Returns False when
        the task belongs to another framework than the one this hub already uses."""
        if not self.framework_id:
            self.framework_id = state.framework_id
        elif self.framework_id != state.framework_id:
            self.log.warning("task %s belongs to framework %s, but this hub is framework %s: it cannot be reconciled",
                             state.task_id, state.framework_id, self.framework_id)
            return False
        if state.task_id not in self._tasks:
            self._tasks[state.task_id] = TrackedTask(task_id=state.task_id, role=state.role, agent_id=state.agent_id)
        return True

    def task(self, task_id):
        return self._tasks.get(task_id)

    def forget(self, task_id):
        """Drops a task the hub no longer needs to hear about (after its server was stopped)."""
        self._tasks.pop(task_id, None)
        pending = self._pending.pop(task_id, None)
        if pending is not None and not pending.launched.done():
            pending.launched.cancel()

    async def connected(self, timeout):
        """Starts the subscription if needed and waits until it is established."""
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._run())
        await asyncio.wait_for(self._subscribed.wait(), timeout)

    async def launch(self, pending: PendingLaunch, timeout):
        """Queues a launch, opens the offers of its role and waits until an offer held it.
        Returns the TrackedTask. Cancelled (stop during the wait) when forget()/kill() drops it."""
        self._pending[pending.task_id] = pending
        try:
            await self.connected(timeout)
            await self._sync_roles(revive=[pending.role])
            # An agent whose offer did not fit is filtered for decline_seconds; what changes
            # meanwhile (a quota raised, a task ended) may make it fit, so the role is revived
            # while the launch waits.
            while not pending.launched.done():
                await asyncio.wait({pending.launched}, timeout=max(2 * self.settings.decline_seconds, 1.0))
                if not pending.launched.done() and self._subscribed.is_set():
                    await self._revive_quietly(pending.role)
            return pending.launched.result()
        except BaseException:
            if self._pending.get(pending.task_id) is pending:
                del self._pending[pending.task_id]
                await self._sync_roles_quietly()
            raise

    async def wait_for(self, task_id, predicate, timeout):
        """Waits until predicate(task) holds for the tracked task; returns it."""
        task = self._tasks[task_id]
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: predicate(task)), timeout)
        return task

    async def changed(self, timeout):
        """Waits until any task's state changes, or at most timeout seconds."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def reconcile(self, task_id, timeout):
        """The task's state, asking the master when it is not known yet (an adopted task). Returns
        None when the master gives no definite answer in time (the task's agent has not
        re-registered yet): the task may still run."""
        task = self._tasks.get(task_id)
        if task is None:
            return common_pb2.TASK_UNKNOWN
        if task.state is not None:
            return task.state
        await self.connected(timeout)
        if task.state is None:
            await self._call("Reconcile", scheduler_pb2.ReconcileRequest(
                tasks=[scheduler_pb2.ReconcileRequest.Task(task_id=task_id, agent_id=task.agent_id)]))
        try:
            await self.wait_for(task_id, lambda t: t.state is not None, timeout)
        except asyncio.TimeoutError:
            return None
        return task.state

    async def kill(self, task_id, grace_seconds, timeout):
        """Kills the task (or drops its launch if it is still waiting for an offer) and waits for a
        terminal state. Returns the task, or None when there was nothing to kill."""
        pending = self._pending.pop(task_id, None)
        if pending is not None:
            pending.launched.cancel()
            await self._sync_roles_quietly()
        task = self._tasks.get(task_id)
        if task is None or is_terminal(task.state):
            return task
        await self.connected(timeout)
        kill = scheduler_pb2.KillRequest(task_id=task_id, agent_id=task.agent_id)
        kill.kill_policy.grace_period_seconds = grace_seconds
        await self._call("Kill", kill)
        return await self.wait_for(task_id, lambda t: is_terminal(t.state), timeout)

    async def close(self):
        """Ends the subscription without tearing the framework down: its tasks keep running for
        the failover timeout, for the next hub to find."""
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
            self._runner = None

    # ---- the subscription ----

    def _info(self, roles):
        info = common_pb2.FrameworkInfo(
            id=self.framework_id, name=self.settings.name, user=self.settings.user, roles=roles,
            principal=self.settings.principal, failover_timeout_seconds=self.settings.failover_timeout,
            capabilities=[common_pb2.MULTI_ROLE, common_pb2.PARTITION_AWARE], hostname=socket.gethostname())
        info.labels.add(key="jupyterhub.spawner", value="sched_jupyterhub")
        return info

    def _desired_roles(self):
        prefix = self.settings.role_prefix.strip("/")
        wanted = {p.role for p in self._pending.values()}
        users = wanted | {t.role for t in self._tasks.values() if t.role and not is_terminal(t.state)}
        roles = [prefix] + sorted(users - {prefix})
        return roles, [r for r in roles if r not in wanted]

    async def _run(self):
        delay = _RETRY_FIRST
        while True:
            channel = self._connection.open_channel()
            address = self._connection.address
            try:
                self._stub = scheduler_pb2_grpc.SchedulerStub(channel)
                roles, suppressed = self._desired_roles()
                call = self._stub.Subscribe(
                    scheduler_pb2.SubscribeRequest(framework_info=self._info(roles), suppressed_roles=suppressed),
                    metadata=self._connection.metadata)
                self._sent_roles = (roles, suppressed)
                while True:
                    # No event (not even a heartbeat) for three intervals: the master is gone.
                    event = await asyncio.wait_for(call.read(), max(5.0, 3 * self._heartbeat_interval))
                    if event is grpc.aio.EOF:
                        self.log.warning("the master at %s ended the subscription; subscribing again", address)
                        break
                    delay = _RETRY_FIRST
                    await self._on_event(event)
            except asyncio.CancelledError:
                await channel.close()
                raise
            except asyncio.TimeoutError:
                self.log.warning("no heartbeat from the master at %s; subscribing again", address)
                call.cancel()
            except grpc.aio.AioRpcError as e:
                self._on_subscribe_error(e, address)
            except Exception:  # noqa: BLE001 - keep the hub's framework alive whatever happens
                self.log.exception("the subscription to %s failed; subscribing again", address)
            self._subscribed.clear()
            self._stream_id = ""
            await channel.close()
            await asyncio.sleep(delay)  # retry backoff
            delay = min(delay * 2, _RETRY_MAX)

    def _on_subscribe_error(self, error, address):
        code = error.code()
        if code == grpc.StatusCode.NOT_FOUND and self.framework_id:
            self.log.error("the master no longer knows framework %s (%s): its tasks are gone; "
                           "subscribing as a new framework", self.framework_id, error.details())
            self.framework_id = ""
            for task in self._tasks.values():
                if not is_terminal(task.state):
                    task.state = common_pb2.TASK_GONE
            self._notify_soon()
        elif code == grpc.StatusCode.INVALID_ARGUMENT:
            self.log.error("the master refused the subscription: %s", error.details())
            for pending in list(self._pending.values()):
                if not pending.launched.done():
                    pending.launched.set_exception(RuntimeError("the master refused the hub's framework: " + error.details()))
        else:
            nxt = self._connection.next_after(error)
            self.log.warning("the master at %s answered %s (%s); trying %s", address, code.name, error.details(), nxt)

    async def _on_event(self, event):
        kind = event.WhichOneof("event")
        if kind == "subscribed":
            await self._on_subscribed(event.subscribed)
        elif kind == "offers":
            await self._on_offers(event.offers.offers)
        elif kind == "update":
            await self._on_statuses([event.update.status])
        elif kind == "updates":
            await self._on_statuses(list(event.updates.statuses))
        elif kind == "error":
            self.log.error("the master reports an error for the hub's framework: %s", event.error.message)

    async def _on_subscribed(self, subscribed):
        self.framework_id = subscribed.framework_id
        self._stream_id = subscribed.stream_id
        if subscribed.heartbeat_interval_seconds > 0:
            self._heartbeat_interval = subscribed.heartbeat_interval_seconds
        self.log.info("subscribed to the master at %s as framework %s", self._connection.address, self.framework_id)
        # Adopted tasks with their agents get a definite answer; the implicit reconciliation also
        # reports tasks the hub no longer knows (orphans).
        explicit = [scheduler_pb2.ReconcileRequest.Task(task_id=t.task_id, agent_id=t.agent_id)
                    for t in self._tasks.values() if t.state is None or not is_terminal(t.state)]
        self._subscribed.set()
        try:
            if explicit:
                await self._call("Reconcile", scheduler_pb2.ReconcileRequest(tasks=explicit))
            await self._call("Reconcile", scheduler_pb2.ReconcileRequest())
        except grpc.aio.AioRpcError as e:
            # poll() asks again for each task it needs to know about.
            self.log.warning("reconciling after subscribing failed: %s", e.details())

    async def _on_offers(self, offers):
        for offer in offers:
            chosen = None
            for pending in self._pending.values():
                if pending.role != offer.role or pending.launched.done():
                    continue
                carved = take(offer, pending.request, common_pb2)
                if carved is None:
                    pending.last_shortfall = f"{offer.hostname}: {shortfall(offer, pending.request)}"
                    continue
                chosen = pending, carved
                break
            if chosen is None:
                await self._decline(offer)
                continue
            pending, (resources, ports) = chosen
            try:
                task = pending.build(offer, ports)
            except Exception as e:  # noqa: BLE001 - the spawner's error goes to its start()
                del self._pending[pending.task_id]
                pending.launched.set_exception(e)
                await self._decline(offer)
                continue
            task.task_id = pending.task_id
            task.agent_id = offer.agent_id
            del task.resources[:]
            task.resources.extend(resources)
            tracked = TrackedTask(task_id=pending.task_id, role=pending.role, agent_id=offer.agent_id,
                                  state=common_pb2.TASK_STAGING)
            self._tasks[tracked.task_id] = tracked
            del self._pending[pending.task_id]
            launch = scheduler_pb2.Operation(launch=scheduler_pb2.Operation.Launch(tasks=[task]))
            try:
                await self._call("Accept", scheduler_pb2.AcceptRequest(
                    offer_ids=[offer.id], operations=[launch],
                    filters=common_pb2.Filters(refuse_seconds=self.settings.decline_seconds)))
            except grpc.aio.AioRpcError as e:
                # The launch did not reach the master: wait for another offer.
                del self._tasks[tracked.task_id]
                self._pending[pending.task_id] = pending
                self.log.warning("launching %s on %s failed (%s); waiting for another offer",
                                 pending.task_id, offer.agent_id, e.details())
                continue
            self.log.info("launched %s in role %s on %s (%s)", tracked.task_id, tracked.role, offer.hostname,
                          pending.request.describe())
            pending.launched.set_result(tracked)
        await self._sync_roles_quietly()

    async def _decline(self, offer):
        try:
            await self._call("Decline", scheduler_pb2.DeclineRequest(
                offer_ids=[offer.id], filters=common_pb2.Filters(refuse_seconds=self.settings.decline_seconds)))
        except grpc.aio.AioRpcError as e:
            self.log.warning("declining offer %s failed: %s", offer.id, e.details())

    async def _on_statuses(self, statuses):
        ended = False
        acks = []
        for status in statuses:
            task = self._tasks.get(status.task_id)
            if task is None:
                await self._on_unknown_task(status)
            else:
                was_live = not is_terminal(task.state)
                changed = task.state != status.state
                task.state = status.state
                task.status = status
                if status.agent_id:
                    task.agent_id = status.agent_id
                ended |= was_live and is_terminal(status.state)
                if changed:
                    self.log.info("%s", task.describe())
            if status.uuid:
                acks.append(scheduler_pb2.AcknowledgeRequest.Item(
                    agent_id=status.agent_id, task_id=status.task_id, uuid=status.uuid))
        if acks:
            first = acks[0]
            try:
                await self._call("Acknowledge", scheduler_pb2.AcknowledgeRequest(
                    agent_id=first.agent_id, task_id=first.task_id, uuid=first.uuid, items=acks[1:]))
            except grpc.aio.AioRpcError as e:
                self.log.warning("acknowledging %d status update(s) failed (the agent will resend them): %s",
                                 len(acks), e.details())
        async with self._changed:
            self._changed.notify_all()
        if ended:
            await self._sync_roles_quietly()

    async def _on_unknown_task(self, status):
        """A task no spawner of this hub knows: a server whose start the hub forgot (it stopped
        while the launch was in flight). It holds resources nobody can reach; kill it."""
        if status.state not in LIVE_STATES or status.state == common_pb2.TASK_UNREACHABLE:
            return
        if not self.settings.kill_orphans:
            self.log.warning("task %s (%s) belongs to no server of this hub; leaving it (kill_orphans is off)",
                             status.task_id, state_name(status.state))
            return
        self.log.warning("task %s (%s) belongs to no server of this hub; killing it", status.task_id,
                         state_name(status.state))
        try:
            await self._call("Kill", scheduler_pb2.KillRequest(task_id=status.task_id, agent_id=status.agent_id))
        except grpc.aio.AioRpcError as e:
            self.log.warning("killing orphan task %s failed: %s", status.task_id, e.details())

    # ---- roles ----

    async def _sync_roles(self, revive=()):
        """Tells the master the roles the framework needs now (UpdateFramework) and clears the
        decline filters of roles with a new launch (Revive)."""
        async with self._roles_lock:
            if not self._subscribed.is_set():
                return  # the next Subscribe carries the roles
            roles, suppressed = self._desired_roles()
            if (roles, suppressed) != self._sent_roles:
                await self._call("UpdateFramework", scheduler_pb2.UpdateFrameworkRequest(
                    framework_info=self._info(roles), suppressed_roles=suppressed))
                self._sent_roles = (roles, suppressed)
            if revive:
                await self._call("Revive", scheduler_pb2.ReviveRequest(roles=list(revive)))

    async def _revive_quietly(self, role):
        try:
            await self._call("Revive", scheduler_pb2.ReviveRequest(roles=[role]))
        except grpc.aio.AioRpcError as e:
            self.log.warning("reviving offers for %s failed (tried again shortly): %s", role, e.details())

    async def _sync_roles_quietly(self):
        try:
            await self._sync_roles()
        except grpc.aio.AioRpcError as e:
            self.log.warning("updating the framework's roles failed (retried on the next change): %s", e.details())

    # ---- calls ----

    async def _call(self, method, request):
        """A unary call on the current subscription (framework and stream ids filled in)."""
        request.framework_id = self.framework_id
        request.stream_id = self._stream_id
        return await getattr(self._stub, method)(request, timeout=self.settings.call_timeout,
                                                 metadata=self._connection.metadata)

    def _notify_soon(self):
        async def notify():
            async with self._changed:
                self._changed.notify_all()
        asyncio.ensure_future(notify())
