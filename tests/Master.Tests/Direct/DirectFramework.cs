using Sched.V1;
using Scheduler.Master.State;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Master.Tests.Direct;

/// <summary>
/// A framework in memory, calling a <see cref="DirectMaster"/>'s loop as the Scheduler service
/// does: each call is a command awaited on the loop; events are read from the subscription's
/// outbox. Keeps the offers it holds and the latest status it received per task.
/// </summary>
public sealed class DirectFramework(DirectMaster master, FrameworkInfo info)
{
    public FrameworkInfo Info { get; } = info;

    public string Id => Info.Id;

    public FrameworkSubscription? Subscription { get; private set; }

    public string StreamId => Subscription?.StreamId ?? "";

    /// <summary>Whether the current subscription is open.</summary>
    public bool Connected => Subscription is { Outbox.IsClosed: false };

    /// <summary>Every event received on any subscription, in order.</summary>
    public List<Event> Events { get; } = [];

    /// <summary>Offers received and neither used, declined nor rescinded.</summary>
    public Dictionary<string, Offer> Offers { get; } = new(StringComparer.Ordinal);

    /// <summary>The latest status received per task id.</summary>
    public Dictionary<string, TaskStatus> Latest { get; } = new(StringComparer.Ordinal);

    /// <summary>Updates received that carry a uuid and were not acknowledged yet.</summary>
    public List<TaskStatus> ToAcknowledge { get; } = [];

    /// <summary>A framework with one role and a failover timeout.</summary>
    public static DirectFramework For(DirectMaster master, string role = "web", double failoverTimeoutSeconds = 60, string name = "direct") =>
        new(master, new FrameworkInfo { Name = name, Roles = { role }, FailoverTimeoutSeconds = failoverTimeoutSeconds, Capabilities = { FrameworkCapability.PartitionAware } });

    /// <summary>Subscribes (again, with its id once it has one).</summary>
    public async Task SubscribeAsync()
    {
        var request = new SubscribeRequest { FrameworkInfo = Info.Clone() };
        Subscription = await master.On(l => l.Subscribe(request));
        Offers.Clear();
        Drain();
    }

    /// <summary>The stream ends (the framework's process died or its connection broke).</summary>
    public async Task DisconnectAsync()
    {
        if (Subscription is { } sub)
        {
            var id = Id;
            master.Loop.Post(l => l.OnSubscriptionClosed(id, sub));
            await master.SettleAsync();
        }
    }

    /// <summary>Reads the events queued so far and updates <see cref="Offers"/> and <see cref="Latest"/>.</summary>
    public List<Event> Drain()
    {
        var events = new List<Event>();
        while (Subscription is not null && Subscription.Outbox.TryRead(out var e))
        {
            events.Add(e);
            Events.Add(e);
            switch (e.EventCase)
            {
                case Event.EventOneofCase.Subscribed:
                    Info.Id = e.Subscribed.FrameworkId;
                    break;
                case Event.EventOneofCase.Offers:
                    foreach (var offer in e.Offers.Offers_)
                    {
                        Offers[offer.Id] = offer;
                    }
                    break;
                case Event.EventOneofCase.Rescind:
                    Offers.Remove(e.Rescind.OfferId);
                    break;
                case Event.EventOneofCase.Update:
                    Latest[e.Update.Status.TaskId] = e.Update.Status;
                    if (e.Update.Status.Uuid.Length > 0)
                    {
                        ToAcknowledge.Add(e.Update.Status);
                    }
                    break;
                default:
                    break;
            }
        }
        return events;
    }

    /// <summary>Accepts <paramref name="offerIds"/> launching <paramref name="tasks"/> (no decline filter on the rest).</summary>
    public async Task AcceptAsync(IEnumerable<string> offerIds, IEnumerable<TaskInfo> tasks, double refuseSeconds = 0)
    {
        var request = new AcceptRequest { FrameworkId = Id, StreamId = StreamId, Filters = new Filters { RefuseSeconds = refuseSeconds } };
        request.OfferIds.AddRange(offerIds);
        request.Operations.Add(new Operation { Launch = new Operation.Types.Launch { Tasks = { tasks } } });
        foreach (var id in request.OfferIds)
        {
            Offers.Remove(id);
        }
        await await master.On(l => l.Accept(request));
        Drain();
    }

    public async Task DeclineAsync(IEnumerable<string> offerIds, double refuseSeconds)
    {
        var request = new DeclineRequest { FrameworkId = Id, StreamId = StreamId, Filters = new Filters { RefuseSeconds = refuseSeconds } };
        request.OfferIds.AddRange(offerIds);
        foreach (var id in request.OfferIds)
        {
            Offers.Remove(id);
        }
        await master.On(l => l.Decline(request));
        Drain();
    }

    public async Task KillAsync(string taskId)
    {
        var request = new KillRequest { FrameworkId = Id, StreamId = StreamId, TaskId = taskId };
        await master.On(l => l.Kill(request));
        Drain();
    }

    /// <summary>Acknowledges every update received with a uuid.</summary>
    public async Task AcknowledgeAllAsync()
    {
        if (ToAcknowledge.Count == 0)
        {
            return;
        }
        var request = new AcknowledgeRequest { FrameworkId = Id, StreamId = StreamId };
        request.Items.AddRange(ToAcknowledge.Select(s => new AcknowledgeRequest.Types.Item { AgentId = s.AgentId, TaskId = s.TaskId, Uuid = s.Uuid }));
        ToAcknowledge.Clear();
        await master.On(l => l.Acknowledge(request));
    }

    /// <summary>Implicit reconciliation: the master answers with every task it knows of this framework.</summary>
    public async Task ReconcileAsync()
    {
        var request = new ReconcileRequest { FrameworkId = Id, StreamId = StreamId };
        await master.On(l => l.Reconcile(request));
        Drain();
    }

    /// <summary>A task using <paramref name="resources"/> of <paramref name="offer"/>.</summary>
    public static TaskInfo Task(string taskId, Offer offer, IEnumerable<Resource> resources) => new()
    {
        TaskId = taskId,
        Name = taskId,
        AgentId = offer.AgentId,
        Command = new CommandInfo { Value = "true" },
        Resources = { resources.Select(r => { var c = r.Clone(); c.AllocationRole = offer.Role; return c; }) },
    };
}
