using Scheduler.Resilience;
using Google.Protobuf;
using Sched.V1;
using Grpc.Core;
using Xunit;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.FrameworkSdk.Tests;

public sealed class SchedulerClientTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static SchedulerClientOptions Options(params string[] masters) => new()
    {
        Masters = masters,
        Framework = new FrameworkInfo { Name = "test", Roles = { "*" } },
        Backoff = new Backoff(TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(100)),
        SubscribeTimeout = TimeSpan.FromSeconds(5),
        CallTimeout = TimeSpan.FromSeconds(5),
    };

    [Fact]
    public async Task Subscribes_and_fills_framework_and_stream_ids_in_calls()
    {
        await using var master = await ScriptedMaster.StartAsync();
        await using var client = new SchedulerClient(Options(master.Address));
        client.Start();
        var sub = await master.NextSubscriptionAsync();
        Assert.Equal("", sub.Request.FrameworkInfo.Id);
        Assert.Equal("test", sub.Request.FrameworkInfo.Name);
        sub.SendSubscribed("fw-1", "stream-1");

        var subscribed = await client.WaitForSubscriptionAsync().WaitAsync(Wait);
        Assert.Equal("fw-1", subscribed.FrameworkId);
        Assert.Equal("fw-1", client.FrameworkId);
        Assert.Equal("stream-1", client.StreamId);

        var offer = new Offer { Id = "o1", AgentId = "a1", Role = "*" };
        offer.Resources.Add(new Resource { Name = "cpus", Scalar = 2 });
        offer.Resources.Add(new Resource { Name = "mem", Scalar = 512 });
        var task = new TaskBuilder("t1").Shell("true").Cpus(1).Mem(128).Build(offer);
        await client.LaunchAsync(offer, [task], refuseSeconds: 3);
        var accept = await master.NextCallAsync<AcceptRequest>();
        Assert.Equal("fw-1", accept.FrameworkId);
        Assert.Equal("stream-1", accept.StreamId);
        Assert.Equal(["o1"], accept.OfferIds);
        Assert.Equal("a1", accept.Operations[0].Launch.Tasks[0].AgentId);
        Assert.Equal(3, accept.Filters.RefuseSeconds);

        await client.DeclineAsync(["o2"]);
        Assert.Equal("stream-1", (await master.NextCallAsync<DeclineRequest>()).StreamId);
        await client.KillAsync("t1", gracePeriod: TimeSpan.FromSeconds(2));
        var kill = await master.NextCallAsync<KillRequest>();
        Assert.Equal(("fw-1", "t1", 2.0), (kill.FrameworkId, kill.TaskId, kill.KillPolicy.GracePeriodSeconds));
        await client.ReviveAsync(["*"]);
        Assert.Equal(["*"], (await master.NextCallAsync<ReviveRequest>()).Roles);
        await client.SuppressAsync();
        Assert.Equal("fw-1", (await master.NextCallAsync<SuppressRequest>()).FrameworkId);
        await client.ReconcileAsync([("t1", "a1")]);
        Assert.Equal("t1", (await master.NextCallAsync<ReconcileRequest>()).Tasks[0].TaskId);
        await client.MessageAsync("a1", "t1", new byte[] { 1, 2 });
        Assert.Equal(ByteString.CopyFrom(1, 2), (await master.NextCallAsync<MessageRequest>()).Data);
        await client.UpdateFrameworkAsync(new FrameworkInfo { Name = "renamed", Roles = { "*" } });
        var update = await master.NextCallAsync<UpdateFrameworkRequest>();
        Assert.Equal(("fw-1", "renamed"), (update.FrameworkInfo.Id, update.FrameworkInfo.Name));
    }

    [Fact]
    public async Task Follows_the_leader_hint_of_a_non_leading_master()
    {
        await using var leader = await ScriptedMaster.StartAsync();
        await using var follower = await ScriptedMaster.StartAsync();
        follower.RedirectTo = leader.Address;
        await using var client = new SchedulerClient(Options(follower.Address));
        client.Start();
        var sub = await leader.NextSubscriptionAsync();
        sub.SendSubscribed("fw-1", "s1");
        await client.WaitForSubscriptionAsync().WaitAsync(Wait);
        Assert.Equal(leader.Address, client.Master);
    }

    [Fact]
    public async Task Missed_heartbeats_reconnect_and_resubscribe_with_the_framework_id()
    {
        await using var master = await ScriptedMaster.StartAsync();
        await using var client = new SchedulerClient(Options(master.Address));
        var events = client.ReadEventsAsync().GetAsyncEnumerator();
        var first = await master.NextSubscriptionAsync();
        first.SendSubscribed("fw-7", "s1", heartbeatSeconds: 0.1);
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(Event.EventOneofCase.Subscribed, events.Current.EventCase);

        // The master goes silent: after 3 × 0.1 s the client gives up on this stream.
        var second = await master.NextSubscriptionAsync();
        await first.ClientGone.WaitAsync(Wait);
        Assert.Equal("fw-7", second.Request.FrameworkInfo.Id);
        second.SendSubscribed("fw-7", "s2", heartbeatSeconds: 30);
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("s2", events.Current.Subscribed.StreamId);
        Assert.Equal("s2", client.StreamId);
        await events.DisposeAsync();
    }

    [Fact]
    public async Task Heartbeats_keep_the_subscription_alive()
    {
        await using var master = await ScriptedMaster.StartAsync();
        await using var client = new SchedulerClient(Options(master.Address));
        var events = client.ReadEventsAsync().GetAsyncEnumerator();
        var sub = await master.NextSubscriptionAsync();
        // Interval 0.5 s (loss after 1.5 s) while the master sends one every 100 ms: ample slack,
        // so only a client that ignored heartbeats would drop the subscription.
        sub.SendSubscribed("fw-1", "s1", heartbeatSeconds: 0.5);
        var timeout = TimeSpan.FromSeconds(10);
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(timeout));
        for (var i = 0; i < 20; i++)
        {
            sub.Send(new Event { Heartbeat = new Event.Types.Heartbeat() });
            Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(timeout));
            Assert.Equal(Event.EventOneofCase.Heartbeat, events.Current.EventCase);
            await Task.Delay(100); // the master's heartbeat cadence, not a synchronisation
        }
        Assert.False(sub.ClientGone.IsCompleted);
        Assert.Equal("s1", client.StreamId);
        await events.DisposeAsync();
    }

    [Fact]
    public async Task Updates_are_acknowledged_in_batches_after_the_consumer_saw_them()
    {
        await using var master = await ScriptedMaster.StartAsync();
        await using var client = new SchedulerClient(Options(master.Address));
        var events = client.ReadEventsAsync().GetAsyncEnumerator();
        var sub = await master.NextSubscriptionAsync();
        sub.SendSubscribed("fw-1", "s1");
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));

        var batch = new Event { Updates = new Event.Types.Updates() };
        batch.Updates.Statuses.Add(Status("t1", "u1"));
        batch.Updates.Statuses.Add(Status("t2", "u2"));
        batch.Updates.Statuses.Add(new TaskStatus { TaskId = "t3", AgentId = "a1", State = TaskState.TaskRunning, Source = TaskStatus.Types.Source.Master });
        sub.Send(batch);
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        sub.Send(new Event { Heartbeat = new Event.Types.Heartbeat() });
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10))); // the consumer is done with the updates

        var ack = await master.NextCallAsync<AcknowledgeRequest>();
        var acked = new[] { (ack.TaskId, ack.Uuid) }.Concat(ack.Items.Select(i => (i.TaskId, i.Uuid))).ToList();
        if (acked.Count < 2)
        {
            var more = await master.NextCallAsync<AcknowledgeRequest>();
            acked.Add((more.TaskId, more.Uuid));
        }
        Assert.Equal([("t1", "u1"), ("t2", "u2")], acked.OrderBy(a => a.TaskId));
        Assert.Equal("s1", ack.StreamId);
        await events.DisposeAsync();
    }

    [Fact]
    public async Task A_refused_acknowledgement_does_not_hold_back_the_others_of_its_batch()
    {
        await using var master = await ScriptedMaster.StartAsync();
        master.UnknownTask = "t3";
        await using var client = new SchedulerClient(Options(master.Address));
        var events = client.ReadEventsAsync().GetAsyncEnumerator();
        var sub = await master.NextSubscriptionAsync();
        sub.SendSubscribed("fw-1", "s1");
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        var batch = new Event { Updates = new Event.Types.Updates() };
        for (var i = 1; i <= 5; i++)
        {
            batch.Updates.Statuses.Add(Status($"t{i}", $"u{i}"));
        }
        sub.Send(batch);
        sub.Send(new Event { Heartbeat = new Event.Types.Heartbeat() });
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(await events.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));

        var acked = new HashSet<string>();
        while (acked.Count < 4)
        {
            var ack = await master.NextCallAsync<AcknowledgeRequest>();
            acked.Add(ack.TaskId);
            acked.UnionWith(ack.Items.Select(i => i.TaskId));
        }
        Assert.Equal(["t1", "t2", "t4", "t5"], acked.Order());
        await events.DisposeAsync();
    }

    [Fact]
    public async Task A_refused_subscription_ends_the_events_with_an_error()
    {
        await using var master = await ScriptedMaster.StartAsync();
        master.SubscribeFailure = new Status(StatusCode.NotFound, "framework fw-9 was removed");
        var options = Options(master.Address);
        await using var client = new SchedulerClient(new SchedulerClientOptions
        {
            Masters = options.Masters,
            Framework = new FrameworkInfo { Id = "fw-9", Name = "test", Roles = { "*" } },
            Backoff = options.Backoff,
        });
        var events = new List<Event>();
        await foreach (var e in client.ReadEventsAsync().WithCancellation(new CancellationTokenSource(Wait).Token))
        {
            events.Add(e);
        }
        var error = Assert.Single(events);
        Assert.Contains("removed", error.Error.Message, StringComparison.Ordinal);
        Assert.NotNull(client.TerminationReason);
        await Assert.ThrowsAsync<SchedulerException>(() => client.ReviveAsync());
    }

    [Fact]
    public async Task Reconnects_to_the_next_master_when_one_is_down()
    {
        await using var live = await ScriptedMaster.StartAsync();
        await using var client = new SchedulerClient(Options("127.0.0.1:1", live.Address));
        client.Start();
        var sub = await live.NextSubscriptionAsync();
        sub.SendSubscribed("fw-1", "s1");
        await client.WaitForSubscriptionAsync().WaitAsync(Wait);
        Assert.Equal(live.Address, client.Master);
    }

    [Fact]
    public async Task An_accept_cut_off_by_a_dying_master_is_not_repeated_on_the_next_one()
    {
        // The old master may have launched the tasks before it died: repeated on the new master,
        // the Accept's stale offers would be answered TASK_DROPPED for tasks that may be running,
        // and a framework trusting that launches them twice.
        var old = await ScriptedMaster.StartAsync();
        var oldGone = false;
        try
        {
            await using var next = await ScriptedMaster.StartAsync();
            var held = new TaskCompletionSource();
            old.BeforeAnswer = call => call is AcceptRequest ? held.Task : Task.CompletedTask;
            await using var client = new SchedulerClient(Options(old.Address, next.Address));
            client.Start();
            var first = await old.NextSubscriptionAsync();
            first.SendSubscribed("fw-1", "s1");
            await client.WaitForSubscriptionAsync().WaitAsync(Wait);

            var offer = new Offer { Id = "o1", AgentId = "a1", Role = "*" };
            offer.Resources.Add(new Resource { Name = "cpus", Scalar = 1 });
            offer.Resources.Add(new Resource { Name = "mem", Scalar = 128 });
            var launch = client.LaunchAsync(offer, [new TaskBuilder("t1").Shell("true").Cpus(1).Mem(128).Build(offer)]);
            Assert.Equal("s1", (await old.NextCallAsync<AcceptRequest>()).StreamId);

            // The framework moves to the next master while the Accept is in flight; then the old
            // master dies with the call unanswered.
            old.RedirectTo = next.Address;
            first.Close();
            (await next.NextSubscriptionAsync()).SendSubscribed("fw-1", "s2");
            await WaitForStreamAsync(client, "s2");
            await old.DisposeAsync();
            oldGone = true;

            var e = await Assert.ThrowsAsync<RpcException>(() => launch.WaitAsync(Wait));
            Assert.Equal(StatusCode.Unavailable, e.StatusCode);
            await client.DeclineAsync(["o2"]);
            Assert.IsType<DeclineRequest>(await next.NextCallAsync<IMessage>());
        }
        finally
        {
            if (!oldGone)
            {
                await old.DisposeAsync();
            }
        }
    }

    private static async Task WaitForStreamAsync(SchedulerClient client, string streamId)
    {
        using var timeout = new CancellationTokenSource(Wait);
        while (client.StreamId != streamId)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), timeout.Token); // polling the client's state, bounded by Wait
        }
    }

    [Fact]
    public async Task Calls_wait_for_a_subscription_and_fail_clearly_without_one()
    {
        var options = Options("127.0.0.1:1");
        await using var client = new SchedulerClient(new SchedulerClientOptions
        {
            Masters = options.Masters,
            Framework = options.Framework,
            Backoff = options.Backoff,
            CallTimeout = TimeSpan.FromMilliseconds(300),
        });
        var e = await Assert.ThrowsAsync<SchedulerException>(() => client.ReviveAsync());
        Assert.Contains("is the master running", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_are_validated_with_a_clear_message()
    {
        var e = Assert.Throws<ArgumentException>(() => new SchedulerClient(new SchedulerClientOptions { Masters = ["x:1"], Framework = new FrameworkInfo { Name = "n" } }));
        Assert.Contains("role", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new SchedulerClient(new SchedulerClientOptions { Framework = new FrameworkInfo { Name = "n", Roles = { "*" } } }));
    }

    private static TaskStatus Status(string taskId, string uuid) => new()
    {
        TaskId = taskId,
        AgentId = "a1",
        State = TaskState.TaskRunning,
        Uuid = uuid,
        Source = TaskStatus.Types.Source.Agent,
    };
}
