using Google.Protobuf;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.Protocol;
using Grpc.Core;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.FrameworkSdk;

/// <summary>The framework's calls to the master.</summary>
public sealed partial class SchedulerClient
{
    private volatile bool _tearingDown;

    /// <summary>
    /// Applies operations to offers (all on one agent). Tasks that cannot be launched come back as
    /// TASK_ERROR/TASK_DROPPED updates, not as an exception. When the call fails because the
    /// connection to the master broke (<see cref="RpcException"/>, UNAVAILABLE), the master may or
    /// may not have launched the tasks: the call is not repeated (its offers died with that
    /// master's term, and a new master would answer TASK_DROPPED for tasks that may be running),
    /// so reconcile them; a task never launched is then answered TASK_UNKNOWN.
    /// </summary>
    /// <param name="offerIds">The offers used.</param>
    /// <param name="operations">LAUNCH, RESERVE, UNRESERVE, CREATE, DESTROY, applied in order.</param>
    /// <param name="refuseSeconds">Decline filter for what is left over; null = master default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task AcceptAsync(IEnumerable<string> offerIds, IEnumerable<Operation> operations, double? refuseSeconds = null, CancellationToken cancellationToken = default) =>
        CallAsync(SchedulerMethods.Accept, s =>
        {
            var r = new AcceptRequest { FrameworkId = s.FrameworkId, StreamId = s.StreamId };
            r.OfferIds.Add(offerIds);
            r.Operations.Add(operations);
            if (refuseSeconds is { } seconds)
            {
                r.Filters = new Filters { RefuseSeconds = seconds };
            }
            return r;
        }, cancellationToken, repeatable: false);

    /// <summary>Launches <paramref name="tasks"/> on one offer; what is left of it is declined.</summary>
    /// <param name="offer">The offer (its agent receives the tasks).</param>
    /// <param name="tasks">Tasks whose resources fit in the offer (see <see cref="OfferResources"/>).</param>
    /// <param name="refuseSeconds">Decline filter for the rest of the offer; null = master default.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task LaunchAsync(Offer offer, IEnumerable<TaskInfo> tasks, double? refuseSeconds = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(offer);
        var launch = new Operation.Types.Launch();
        foreach (var task in tasks)
        {
            if (string.IsNullOrEmpty(task.AgentId))
            {
                task.AgentId = offer.AgentId;
            }
            launch.Tasks.Add(task);
        }
        return AcceptAsync([offer.Id], [new Operation { Launch = launch }], refuseSeconds, cancellationToken);
    }

    /// <summary>Returns offers unused; their agents are not offered to this framework again for
    /// <paramref name="refuseSeconds"/> (null = master default, 5 s).</summary>
    /// <param name="offerIds">The offers to decline.</param>
    /// <param name="refuseSeconds">The decline filter.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task DeclineAsync(IEnumerable<string> offerIds, double? refuseSeconds = null, CancellationToken cancellationToken = default) =>
        CallAsync(SchedulerMethods.Decline, s =>
        {
            var r = new DeclineRequest { FrameworkId = s.FrameworkId, StreamId = s.StreamId };
            r.OfferIds.Add(offerIds);
            if (refuseSeconds is { } seconds)
            {
                r.Filters = new Filters { RefuseSeconds = seconds };
            }
            return r;
        }, cancellationToken);

    /// <summary>Clears decline filters and un-suppresses <paramref name="roles"/> (all if none).</summary>
    /// <param name="roles">Roles to revive; empty = all.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task ReviveAsync(IEnumerable<string>? roles = null, CancellationToken cancellationToken = default) =>
        CallAsync(SchedulerMethods.Revive, s =>
        {
            var r = new ReviveRequest { FrameworkId = s.FrameworkId, StreamId = s.StreamId };
            r.Roles.Add(roles ?? []);
            return r;
        }, cancellationToken);

    /// <summary>Stops offers for <paramref name="roles"/> (all if none) until <see cref="ReviveAsync"/>.</summary>
    /// <param name="roles">Roles to suppress; empty = all.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task SuppressAsync(IEnumerable<string>? roles = null, CancellationToken cancellationToken = default) =>
        CallAsync(SchedulerMethods.Suppress, s =>
        {
            var r = new SuppressRequest { FrameworkId = s.FrameworkId, StreamId = s.StreamId };
            r.Roles.Add(roles ?? []);
            return r;
        }, cancellationToken);

    /// <summary>Kills a task; its terminal state arrives as an update.</summary>
    /// <param name="taskId">The task.</param>
    /// <param name="agentId">Its agent, if known (optional).</param>
    /// <param name="gracePeriod">Overrides the task's kill grace period (SIGTERM → SIGKILL).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task KillAsync(string taskId, string? agentId = null, TimeSpan? gracePeriod = null, CancellationToken cancellationToken = default) =>
        CallAsync(SchedulerMethods.Kill, s =>
        {
            var r = new KillRequest { FrameworkId = s.FrameworkId, StreamId = s.StreamId, TaskId = taskId, AgentId = agentId ?? "" };
            if (gracePeriod is { } grace)
            {
                r.KillPolicy = new KillPolicy { GracePeriodSeconds = grace.TotalSeconds };
            }
            return r;
        }, cancellationToken);

    /// <summary>
    /// Acknowledges one status update now (needed only with auto-acknowledge off). Updates without
    /// a uuid need no acknowledgement and are ignored.
    /// </summary>
    /// <param name="status">The update received.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task AcknowledgeAsync(TaskStatus status, CancellationToken cancellationToken = default) =>
        AcknowledgeAsync([status], cancellationToken);

    /// <summary>Acknowledges several status updates in one call.</summary>
    /// <param name="statuses">The updates received.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task AcknowledgeAsync(IEnumerable<TaskStatus> statuses, CancellationToken cancellationToken = default)
    {
        var items = statuses.Where(s => s.NeedsAcknowledgement()).Select(ToItem).ToList();
        return items.Count == 0 ? Task.CompletedTask : SendAcknowledgementsAsync(items, cancellationToken);
    }

    /// <summary>
    /// Asks for the latest state of tasks: each listed task gets an update (TASK_UNKNOWN if the
    /// master does not know it); an empty list asks for every task of the framework.
    /// </summary>
    /// <param name="tasks">(task id, agent id or empty) pairs; empty = implicit reconciliation.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task ReconcileAsync(IEnumerable<(string TaskId, string AgentId)>? tasks = null, CancellationToken cancellationToken = default) =>
        CallAsync(SchedulerMethods.Reconcile, s =>
        {
            var r = new ReconcileRequest { FrameworkId = s.FrameworkId, StreamId = s.StreamId };
            foreach (var (taskId, agentId) in tasks ?? [])
            {
                r.Tasks.Add(new ReconcileRequest.Types.Task { TaskId = taskId, AgentId = agentId ?? "" });
            }
            return r;
        }, cancellationToken);

    /// <summary>Sends opaque data to a task's executor (best effort).</summary>
    /// <param name="agentId">The agent.</param>
    /// <param name="executorId">The executor (task) id.</param>
    /// <param name="data">The payload.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task MessageAsync(string agentId, string executorId, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
        CallAsync(SchedulerMethods.Message, s => new MessageRequest
        {
            FrameworkId = s.FrameworkId,
            StreamId = s.StreamId,
            AgentId = agentId,
            ExecutorId = executorId,
            Data = ByteString.CopyFrom(data.Span),
        }, cancellationToken);

    /// <summary>True from <see cref="TeardownAsync"/> on: the stream's end is the framework's own doing.</summary>
    internal bool TearingDown => _tearingDown;

    /// <summary>
    /// Removes the framework: the master kills its tasks, rescinds its offers and closes its
    /// stream. The client stops afterwards (the event sequence ends).
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    public async Task TeardownAsync(CancellationToken cancellationToken = default)
    {
        // The master answers a teardown with an error event on the stream ("torn down by the
        // framework"); it is the expected end, not an error to report.
        _tearingDown = true;
        try
        {
            await CallAsync(SchedulerMethods.Teardown, s => new TeardownRequest { FrameworkId = s.FrameworkId, StreamId = s.StreamId }, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _tearingDown = false;
            throw;
        }
        lock (_lock)
        {
            TerminationReason = "the framework was torn down";
            _current = null;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        _inbox.Writer.TryComplete();
    }

    /// <summary>Changes the framework's name, roles, capabilities or constraints in place.</summary>
    /// <param name="framework">The new description (its id is filled in).</param>
    /// <param name="suppressedRoles">Roles to keep suppressed.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task UpdateFrameworkAsync(FrameworkInfo framework, IEnumerable<string>? suppressedRoles = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(framework);
        return CallAsync(SchedulerMethods.UpdateFramework, s =>
        {
            var info = framework.Clone();
            info.Id = s.FrameworkId;
            var r = new UpdateFrameworkRequest { FrameworkId = s.FrameworkId, StreamId = s.StreamId, FrameworkInfo = info };
            r.SuppressedRoles.Add(suppressedRoles ?? []);
            return r;
        }, cancellationToken);
    }

    /// <summary>Queues the acknowledgements an event needs (auto-acknowledge).</summary>
    internal void EnqueueAcknowledgements(Event e)
    {
        switch (e.EventCase)
        {
            case Event.EventOneofCase.Update when e.Update.Status.NeedsAcknowledgement():
                _pendingAcks.Writer.TryWrite(ToItem(e.Update.Status));
                break;
            case Event.EventOneofCase.Updates:
                foreach (var status in e.Updates.Statuses.Where(s => s.NeedsAcknowledgement()))
                {
                    _pendingAcks.Writer.TryWrite(ToItem(status));
                }
                break;
        }
    }

    private static AcknowledgeRequest.Types.Item ToItem(TaskStatus status) =>
        new() { AgentId = status.AgentId, TaskId = status.TaskId, Uuid = status.Uuid };

    private Task SendAcknowledgementsAsync(IReadOnlyList<AcknowledgeRequest.Types.Item> items, CancellationToken cancellationToken) =>
        CallAsync(SchedulerMethods.Acknowledge, s =>
        {
            var r = new AcknowledgeRequest
            {
                FrameworkId = s.FrameworkId,
                StreamId = s.StreamId,
                AgentId = items[0].AgentId,
                TaskId = items[0].TaskId,
                Uuid = items[0].Uuid,
            };
            r.Items.Add(items.Skip(1));
            return r;
        }, cancellationToken);

    /// <summary>
    /// Sends queued acknowledgements, batching whatever accumulated while the previous call was in
    /// flight. A failed batch is dropped: the agent re-sends unacknowledged updates, and the
    /// re-sent update is acknowledged again (at-least-once).
    /// </summary>
    private async Task RunAcknowledgementsAsync(CancellationToken ct)
    {
        const int MaxBatch = 512;
        var batch = new List<AcknowledgeRequest.Types.Item>(MaxBatch);
        try
        {
            while (await _pendingAcks.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
            {
                batch.Clear();
                while (batch.Count < MaxBatch && _pendingAcks.Reader.TryRead(out var item))
                {
                    batch.Add(item);
                }
                await SendBatchAsync(batch, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Sends one batch. The master refuses a whole batch when one item is bad (a task it no longer
    /// knows, e.g. a completed task it has pruned); then the batch is split in halves so that every
    /// good acknowledgement still gets through and only the bad ones are dropped.
    /// </summary>
    private async Task SendBatchAsync(List<AcknowledgeRequest.Types.Item> batch, CancellationToken ct)
    {
        try
        {
            await SendAcknowledgementsAsync(batch, ct).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.InvalidArgument)
        {
            if (batch.Count == 1)
            {
                SdkLog.AckRefused(_logger, batch[0].TaskId, batch[0].Uuid, e.Status.Detail);
                return;
            }
            var half = batch.Count / 2;
            await SendBatchAsync(batch.GetRange(0, half), ct).ConfigureAwait(false);
            await SendBatchAsync(batch.GetRange(half, batch.Count - half), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RpcException or SchedulerException or TimeoutException or HttpRequestException)
        {
            SdkLog.AckFailed(_logger, batch.Count, e.Message);
        }
    }

    private async Task<Event.Types.Subscribed> SubscriptionForCallAsync(CancellationToken cancellationToken)
    {
        if (TerminationReason is { } reason)
        {
            throw new SchedulerException("The framework client has stopped: " + reason);
        }
        if (CurrentSubscription is { } current)
        {
            return current;
        }
        try
        {
            return await WaitForSubscriptionAsync(cancellationToken).WaitAsync(_options.CallTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException e)
        {
            throw new SchedulerException($"Not subscribed to any master ({string.Join(", ", _masters.Configured)}) after {_options.CallTimeout.TotalSeconds:0.#} s; is the master running?", e);
        }
    }

    /// <summary>
    /// Calls the master with the current subscription's ids. When the subscription was replaced
    /// while the call was in flight, the call is made once more with the new one — unless it is
    /// not <paramref name="repeatable"/> and may have taken effect: a master that refused it (a
    /// stale stream id, or not the leader) did nothing, but one whose connection broke mid-call
    /// may have applied it.
    /// </summary>
    private async Task CallAsync<TRequest, TResponse>(Method<TRequest, TResponse> method, Func<Event.Types.Subscribed, TRequest> build, CancellationToken cancellationToken, bool repeatable = true)
        where TRequest : class, IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        for (var attempt = 0; ; attempt++)
        {
            var subscription = await SubscriptionForCallAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await _masters.CallAsync(method, build(subscription), _options.CallTimeout, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (RpcException e) when (attempt == 0 && e.StatusCode is StatusCode.FailedPrecondition or StatusCode.Unavailable
                && !ReferenceEquals(CurrentSubscription, subscription)
                && (repeatable || e.StatusCode == StatusCode.FailedPrecondition || MasterDirectory.LeaderHint(e) is not null))
            {
                // The subscription was replaced while the call was in flight: retry once with the new stream id.
                SdkLog.RacedResubscription(_logger, method.Name, e.StatusCode);
            }
        }
    }
}
