using System.Diagnostics;
using Sched.V1;
using Scheduler.Cli.Cluster;
using Scheduler.Etcd;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using Xunit.Abstractions;
using TaskStatus = Sched.V1.TaskStatus;
using Scheduler.Channels;

namespace Scheduler.Integration.Tests;

/// <summary>
/// Replicated masters on a real etcd, as separate processes: the leader is SIGKILLed (three times
/// in a row) or frozen with SIGSTOP, and the cluster must carry on without losing or duplicating
/// anything.
/// </summary>
public sealed class MasterFailoverTests(ITestOutputHelper output)
{
    /// <summary>
    /// A bound on the time to a new leader that proves the lease (2 s) expired and a follower took
    /// over on its own, with room for a loaded machine. The 3 s target itself is measured by
    /// bench/Failover, not asserted by a timed test.
    /// </summary>
    private static readonly TimeSpan Target = TimeSpan.FromSeconds(8);

    [Fact]
    public async Task Killing_the_leader_three_times_while_launching_loses_and_duplicates_nothing()
    {
        await using var cluster = new ClusterFixture();
        await using var etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 3, BaseDirectory = Path.Combine(cluster.WorkDir, "etcd") });
        var masters = await StartMastersAsync(cluster, etcd, 3);
        await Task.WhenAll(cluster.StartAgentAsync(), cluster.StartAgentAsync());
        var all = string.Join(",", masters.Select(m => m.Address));
        await using var fw = new TestFramework(all, "it-master-kill", failoverTimeout: 120) { TeardownOnDispose = false };
        await fw.SubscribedAsync();

        // The framework launches one task after another, all the time, kills included.
        var accepted = new List<TaskInfo>();
        var uncertain = new List<string>();
        using var stopLaunching = new CancellationTokenSource();
        var launcher = Task.Run(async () =>
        {
            for (var n = 0; !stopLaunching.IsCancellationRequested; n++)
            {
                var id = $"t{n}";
                try
                {
                    var task = await fw.LaunchAsync(new TaskBuilder(id).Mock().Cpus(0.05).Mem(8), timeout: TimeSpan.FromSeconds(30));
                    lock (accepted)
                    {
                        accepted.Add(task);
                    }
                }
                catch (Exception e) when (e is RpcException or SchedulerException or TimeoutException)
                {
                    // The accept may or may not have reached the dead leader: the task may run.
                    lock (accepted)
                    {
                        uncertain.Add(id);
                    }
                }
            }
        });

        var runningBeforeKills = new HashSet<string>();
        for (var kill = 1; kill <= 3; kill++)
        {
            var before = Count(accepted);
            await Poll.UntilAsync(() => Count(accepted) >= before + 5, TimeSpan.FromSeconds(30), "five more launches");
            var leader = await WaitForLeaderAsync(masters, exclude: null, TimeSpan.FromSeconds(20));
            runningBeforeKills.UnionWith(fw.Updates.Where(u => u.State == TaskState.TaskRunning).Select(u => u.TaskId));
            var killed = Stopwatch.StartNew();
            await ClusterFixture.KillAsync(leader);
            var next = await WaitForLeaderAsync(masters.Where(m => m != leader && m.Process is not null).ToList(), exclude: leader, TimeSpan.FromSeconds(15));
            var elected = killed.Elapsed;
            await Poll.UntilAsync(() => fw.Client.IsConnected && fw.Client.Master == next.Address, TimeSpan.FromSeconds(15), "the framework to re-subscribe to the new leader on its own");
            var resubscribed = killed.Elapsed;
            output.WriteLine($"kill {kill}: leader {leader.Address} killed; new leader {next.Address} after {elected.TotalMilliseconds:0} ms; framework re-subscribed after {resubscribed.TotalMilliseconds:0} ms");
            Assert.True(elected <= Target, $"kill {kill}: the new leader came {elected.TotalMilliseconds:0} ms after the kill (bound {Target.TotalSeconds} s)");
            // The killed master comes back as a follower, so that there are three for the next kill.
            await cluster.RestartAsync(leader);
        }
        await stopLaunching.CancelAsync();
        await launcher.WaitAsync(TimeSpan.FromSeconds(40));

        var leaderNow = await WaitForLeaderAsync(masters, exclude: null, TimeSpan.FromSeconds(20));
        using var probe = new MasterProbe(leaderNow.Address);
        var launched = accepted.Select(t => t.TaskId).ToHashSet();
        output.WriteLine($"{launched.Count} launches accepted ({runningBeforeKills.Count} running before a kill), {uncertain.Count} accept calls failed during kills");
        Assert.True(runningBeforeKills.Count >= 15);

        // Every task that ran before a kill still runs and reconciles (explicitly, by id); every
        // listed task was launched by the framework, once, and runs.
        await probe.WaitUntilAsync(async () =>
        {
            var tasks = (await probe.CallAsync(OperatorMethods.GetTasks, new GetTasksRequest())).Tasks;
            return runningBeforeKills.All(id => tasks.Any(t => t.Info.TaskId == id && t.State == TaskState.TaskRunning))
                && tasks.All(t => t.State == TaskState.TaskRunning);
        }, TimeSpan.FromSeconds(30), "every task that ran before a kill to be RUNNING on the leader");
        var listed = (await probe.CallAsync(OperatorMethods.GetTasks, new GetTasksRequest())).Tasks;
        Assert.Equal(listed.Count, listed.Select(t => t.Info.TaskId).Distinct().Count());
        Assert.All(listed, t => Assert.True(launched.Contains(t.Info.TaskId) || uncertain.Contains(t.Info.TaskId), $"unknown task {t.Info.TaskId}"));
        var live = listed.Select(t => t.Info.TaskId).ToHashSet();
        // An accept answered just before a kill whose launch message died with the leader is not
        // on any agent: reconciliation tells the framework so. Report how many.
        output.WriteLine($"accepted but not on any agent after the kills: {string.Join(", ", launched.Except(live))}");
        var seen = fw.Updates.Count;
        await fw.Client.ReconcileAsync(accepted.Select(t => (t.TaskId, t.AgentId)));
        await probe.WaitUntilAsync(() => Task.FromResult(runningBeforeKills.All(id => fw.Updates.Skip(seen).Any(u => u.TaskId == id && u.State == TaskState.TaskRunning))
            && launched.All(id => fw.Updates.Skip(seen).Any(u => u.TaskId == id))),
            TimeSpan.FromSeconds(30), "explicit reconciliation to answer RUNNING for every task that ran before a kill, and to answer for every accepted one");

        var updates = fw.Updates;
        foreach (var id in live)
        {
            var fromAgent = updates.Where(u => u.TaskId == id && u.Source != TaskStatus.Types.Source.Master && u.Uuid.Length > 0).ToList();
            // No status update lost: STARTING and RUNNING of every task reached the framework.
            Assert.Contains(fromAgent, u => u.State == TaskState.TaskStarting);
            Assert.Contains(fromAgent, u => u.State == TaskState.TaskRunning);
            // No task launched twice: one STARTING and one RUNNING update (re-sends keep their uuid).
            Assert.Single(fromAgent.Where(u => u.State == TaskState.TaskStarting).Select(u => u.Uuid).Distinct());
            Assert.Single(fromAgent.Where(u => u.State == TaskState.TaskRunning).Select(u => u.Uuid).Distinct());
        }
        Assert.DoesNotContain(updates, u => live.Contains(u.TaskId) && (u.State.IsTerminal() || u.State is TaskState.TaskLost or TaskState.TaskUnreachable));
    }

    [Fact]
    public async Task A_leader_frozen_past_its_lease_does_not_lead_when_it_resumes()
    {
        await using var cluster = new ClusterFixture();
        await using var etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1, BaseDirectory = Path.Combine(cluster.WorkDir, "etcd") });
        var masters = await StartMastersAsync(cluster, etcd, 2);
        var old = await WaitForLeaderAsync(masters, exclude: null, TimeSpan.FromSeconds(20));
        var other = masters.Single(m => m != old);
        using var oldProbe = new MasterProbe(old.Address);
        using var otherProbe = new MasterProbe(other.Address);

        DaemonProcess.Signal(old.Process!.Pid, 19); // SIGSTOP: the whole process, keepalives included
        try
        {
            var next = await WaitForLeaderAsync([other], exclude: old, TimeSpan.FromSeconds(15));
            Assert.Same(other, next);
        }
        finally
        {
            DaemonProcess.Signal(old.Process!.Pid, 18); // SIGCONT
        }

        // From its first answer on, the resumed master serves nothing as leader: a write is refused
        // with UNAVAILABLE (first without a hint, once it has seen the new leader with it).
        var refusals = 0;
        await oldProbe.WaitUntilAsync(async () =>
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => oldProbe.CallAsync(OperatorMethods.UpdateWeights,
                new UpdateWeightsRequest { Weights = { new WeightInfo { Role = "split", Weight = 7 } } }));
            Assert.Equal(StatusCode.Unavailable, e.StatusCode);
            refusals++;
            return e.Trailers.GetValue(MetadataKeys.Leader) == other.Address;
        }, TimeSpan.FromSeconds(15), "the resumed master to name the new leader");
        output.WriteLine($"{refusals} refusal(s) before the resumed master named the new leader");

        // It stepped down and follows; nothing it was asked to write reached the registry.
        var health = await oldProbe.CallAsync(OperatorMethods.GetHealth, new GetHealthRequest());
        Assert.Equal("follower", health.Role);
        var seen = await oldProbe.CallAsync(OperatorMethods.GetLeader, new GetLeaderRequest());
        Assert.False(seen.IsSelf);
        Assert.Equal(other.Address, seen.Leader.Address);
        var roles = await otherProbe.CallAsync(OperatorMethods.GetRoles, new GetRolesRequest());
        Assert.DoesNotContain(roles.Roles, r => r.Name == "split");
        var leaderKey = await ReadLeaderKeyAsync(etcd);
        Assert.Equal(other.Address, leaderKey.Address);

        // And it takes over again when the new leader goes.
        await ClusterFixture.KillAsync(other);
        Assert.Same(old, await WaitForLeaderAsync([old], exclude: other, TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task A_framework_failover_timeout_set_before_a_master_failover_fires_after_it()
    {
        await using var cluster = new ClusterFixture();
        await using var etcd = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1, BaseDirectory = Path.Combine(cluster.WorkDir, "etcd") });
        var masters = await StartMastersAsync(cluster, etcd, 2);
        await cluster.StartAgentAsync();
        var all = string.Join(",", masters.Select(m => m.Address));
        const double FailoverTimeout = 6;
        var fw = new TestFramework(all, "it-fw-timeout", failoverTimeout: FailoverTimeout) { TeardownOnDispose = false };
        var task = await fw.LaunchAsync(new TaskBuilder("held").Mock().Cpus(0.1).Mem(16));
        await fw.WaitForStateAsync(task.TaskId, TaskState.TaskRunning);
        var id = await fw.SubscribedAsync();
        await fw.DisposeAsync(); // the scheduler goes away: its failover timeout starts now
        var gone = Stopwatch.StartNew();

        var leader = await WaitForLeaderAsync(masters, exclude: null, TimeSpan.FromSeconds(20));
        using (var first = new MasterProbe(leader.Address))
        {
            await first.WaitUntilAsync(async () => (await first.CallAsync(OperatorMethods.GetFrameworks, new GetFrameworksRequest())).Frameworks.Any(f => f.Info.Id == id && !f.Connected),
                TimeSpan.FromSeconds(10), "the leader to see the framework disconnected");
        }
        await ClusterFixture.KillAsync(leader);
        var next = await WaitForLeaderAsync(masters.Where(m => m != leader).ToList(), exclude: leader, TimeSpan.FromSeconds(15));
        using var probe = new MasterProbe(next.Address);

        // The new leader knows the framework (from etcd), disconnected, until the deadline set by
        // the old leader passes; then it removes it and kills its task.
        var known = (await probe.CallAsync(OperatorMethods.GetFrameworks, new GetFrameworksRequest())).Frameworks;
        Assert.Contains(known, f => f.Info.Id == id && !f.Connected);
        await probe.WaitUntilAsync(async () =>
            (await probe.CallAsync(OperatorMethods.GetFrameworks, new GetFrameworksRequest())).Frameworks.All(f => f.Info.Id != id),
            TimeSpan.FromSeconds(FailoverTimeout + 15), "the framework to be removed by the new leader");
        var removedAfter = gone.Elapsed;
        output.WriteLine($"framework removed {removedAfter.TotalSeconds:0.0} s after it disconnected (failover timeout {FailoverTimeout} s)");
        Assert.True(removedAfter >= TimeSpan.FromSeconds(FailoverTimeout - 0.5), $"removed after {removedAfter.TotalSeconds:0.0} s, before its failover timeout");
        Assert.True(removedAfter <= TimeSpan.FromSeconds(FailoverTimeout + 6), $"removed only after {removedAfter.TotalSeconds:0.0} s: the deadline did not survive the failover");
        await probe.WaitUntilAsync(async () =>
            (await probe.CallAsync(OperatorMethods.GetTasks, new GetTasksRequest())).Tasks.All(t => t.Info.TaskId != task.TaskId),
            TimeSpan.FromSeconds(15), "the framework's task to be killed");

        // Its id is refused from now on, also by the next leader (a tombstone in the registry).
        await cluster.RestartAsync(leader);
        await ClusterFixture.KillAsync(next);
        Assert.Same(leader, await WaitForLeaderAsync([leader], exclude: next, TimeSpan.FromSeconds(15)));
        await using var again = new TestFramework(leader.Address, "it-fw-timeout", failoverTimeout: FailoverTimeout, frameworkId: id) { TeardownOnDispose = false };
        await Poll.UntilAsync(() => again.Client.TerminationReason is not null, TimeSpan.FromSeconds(20), "the removed framework's re-subscription to be refused");
        Assert.Contains("NotFound", again.Client.TerminationReason, StringComparison.Ordinal);
    }

    /// <summary>Starts <paramref name="count"/> master processes on <paramref name="etcd"/> (lease TTL 2 s).</summary>
    private static async Task<List<ClusterFixture.Node>> StartMastersAsync(ClusterFixture cluster, LocalEtcdCluster etcd, int count)
    {
        var urls = string.Join(",", etcd.Endpoints.Select(e => "http://" + e));
        var masters = new List<ClusterFixture.Node>();
        for (var i = 0; i < count; i++)
        {
            masters.Add(await cluster.StartMasterAsync("--etcd", urls, "--lease-ttl", "2"));
        }
        return masters;
    }

    /// <summary>Polls GetLeader on the candidates (every 20 ms) until one other than
    /// <paramref name="exclude"/> says it leads and answers as leader.</summary>
    internal static async Task<ClusterFixture.Node> WaitForLeaderAsync(IReadOnlyList<ClusterFixture.Node> candidates, ClusterFixture.Node? exclude, TimeSpan timeout)
    {
        var channels = candidates.Where(c => c != exclude && c.Process is not null).Select(c => (Node: c, Channel: GrpcChannels.ForAddress(c.Address))).ToList();
        try
        {
            ClusterFixture.Node? leader = null;
            await Poll.UntilAsync(async () =>
            {
                foreach (var (node, channel) in channels)
                {
                    try
                    {
                        using var call = channel.AsyncUnaryCall(OperatorMethods.GetLeader, new GetLeaderRequest(), new CallOptions(deadline: DateTime.UtcNow.AddSeconds(1)));
                        if ((await call.ResponseAsync).IsSelf)
                        {
                            leader = node;
                            return true;
                        }
                    }
                    catch (RpcException)
                    {
                    }
                }
                return false;
            }, timeout, $"a master of {string.Join(", ", channels.Select(c => c.Node.Address))} to lead");
            return leader!;
        }
        finally
        {
            foreach (var (_, channel) in channels)
            {
                channel.Dispose();
            }
        }
    }

    private static async Task<MasterInfo> ReadLeaderKeyAsync(LocalEtcdCluster etcd)
    {
        using var client = new EtcdClient(new EtcdClientOptions { Endpoints = [.. etcd.Endpoints] });
        var read = await client.RangeAsync(new Etcdserverpb.RangeRequest { Key = Google.Protobuf.ByteString.CopyFromUtf8("/sched/leader") }, CancellationToken.None);
        return MasterInfo.Parser.ParseFrom(Assert.Single(read.Kvs).Value);
    }

    private static int Count(List<TaskInfo> list)
    {
        lock (list)
        {
            return list.Count;
        }
    }
}
