using Sched.V1;
using Scheduler.Protocol;
using Grpc.Core;
using Xunit;
using Scheduler.Channels;

namespace Scheduler.Agent.Tests;

public class AgentHostTests
{
    [Fact]
    public async Task Agent_follows_the_leader_hint_registers_runs_a_task_reliably_and_serves_its_files()
    {
        await using var leader = await TestMasterEndpoint.StartAsync();
        await using var follower = await TestMasterEndpoint.StartAsync(redirectTo: leader.Address);
        var work = Directory.CreateTempSubdirectory("agent-host-").FullName;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var options = new AgentOptions { WorkDir = work, Resources = "cpus:2;mem:1024", Attributes = "rack:r1", Isolation = "none", StatusRetryMin = TimeSpan.FromMilliseconds(200) };
        options.Masters.Add(follower.Address);
        var run = AgentHost.RunAsync(options, cts.Token);
        try
        {
            var register = await NextAsync(leader, AgentMessage.MessageOneofCase.Register, cts.Token);
            Assert.Equal(1, follower.Connections);
            Assert.Equal("", register.Register.AgentInfo.Id);
            Assert.Equal(2, register.Register.AgentInfo.Resources.Where(r => r.Name == "cpus").Sum(r => r.Scalar));
            Assert.Equal("r1", register.Register.AgentInfo.Attributes.Single().Text);

            var task = new TaskInfo { TaskId = "m1", AgentId = "agent-1", Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Mock } };
            await leader.SendAsync(new MasterMessage { Launch = new MasterMessage.Types.LaunchTasks { Framework = AgentHarness.Framework, Tasks = { task } } });
            var states = new List<TaskState>();
            var resends = 0;
            while (states.LastOrDefault() != TaskState.TaskFinished)
            {
                var batch = await NextAsync(leader, AgentMessage.MessageOneofCase.StatusUpdates, cts.Token);
                foreach (var u in batch.StatusUpdates.Updates)
                {
                    if (states.Count > 0 && states[^1] == u.Status.State)
                    {
                        resends++;
                    }
                    else
                    {
                        states.Add(u.Status.State);
                    }
                    // Ack only after the first resend, to see the agent retry.
                    if (resends > 0 || u.Status.State != TaskState.TaskStarting)
                    {
                        await leader.SendAsync(new MasterMessage { Acks = new MasterMessage.Types.StatusAcks { Acks = { new MasterMessage.Types.StatusAck { FrameworkId = u.FrameworkId, TaskId = u.Status.TaskId, Uuid = u.Status.Uuid } } } });
                    }
                }
            }
            Assert.Equal([TaskState.TaskStarting, TaskState.TaskRunning, TaskState.TaskFinished], states);
            Assert.True(resends >= 1, "an unacknowledged update was not re-sent");
            // The assigned id is checkpointed (the agent handled `registered` before the launch).
            Assert.Equal("agent-1", (await File.ReadAllTextAsync(Path.Combine(work, "meta", "agent.id"), cts.Token)).Trim());


            // AgentFiles on the advertised address.
            Directory.CreateDirectory(Path.Combine(work, "sandboxes", "fw1", "m1"));
            await File.WriteAllTextAsync(Path.Combine(work, "sandboxes", "fw1", "m1", "stdout"), "hello files", cts.Token);
            var port = register.Register.AgentInfo.Address.Split(':')[^1];
            using var channel = GrpcChannels.ForAddress("127.0.0.1:" + port);
            var read = await channel.AsyncUnaryCall(AgentFilesMethods.ReadFile, new ReadFileRequest { Path = "fw1/m1/stdout" });
            Assert.Equal("hello files", read.Data.ToStringUtf8());
            var denied = await Assert.ThrowsAsync<RpcException>(async () => await channel.AsyncUnaryCall(AgentFilesMethods.ReadFile, new ReadFileRequest { Path = "../meta/agent.id" }));
            Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        }
        finally
        {
            await cts.CancelAsync();
            Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(20)));
            Directory.Delete(work, true);
        }
    }

    [NeedsFact(Needs.Root)]
    public async Task Task_usage_reaches_the_master_with_the_heartbeats()
    {
        await using var master = await TestMasterEndpoint.StartAsync();
        var work = Directory.CreateTempSubdirectory("agent-usage-").FullName;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var options = new AgentOptions { WorkDir = work, Resources = "cpus:2;mem:1024", Isolation = "auto", UsageEveryHeartbeats = 2 };
        options.Masters.Add(master.Address);
        var run = AgentHost.RunAsync(options, cts.Token);
        try
        {
            await NextAsync(master, AgentMessage.MessageOneofCase.Register, cts.Token);
            // Holds ~8 MiB in a shell variable and spins.
            var task = AgentHarness.ShellTask("busy", "x=$(head -c 8388608 /dev/zero | tr '\\0' a); while :; do :; done", cpus: 0.5, mem: 128);
            task.AgentId = "agent-1";
            await master.SendAsync(new MasterMessage { Launch = new MasterMessage.Types.LaunchTasks { Framework = AgentHarness.Framework, Tasks = { task } } });
            TaskUsage? seen = null;
            while (seen is null)
            {
                var usage = (await NextAsync(master, AgentMessage.MessageOneofCase.Usage, cts.Token)).Usage;
                var mine = usage.Tasks.SingleOrDefault(t => t.TaskId == "busy" && t.FrameworkId == "fw1");
                if (mine is not null && mine.Statistics.CpuUserSeconds + mine.Statistics.CpuSystemSeconds > 0.05 && mine.Statistics.MemBytes > 4 << 20)
                {
                    seen = mine;
                    Assert.True(usage.Total.CpuUserSeconds + usage.Total.CpuSystemSeconds >= mine.Statistics.CpuUserSeconds + mine.Statistics.CpuSystemSeconds - 1e-9);
                }
            }
            Assert.Equal(0.5, seen.Statistics.CpuLimit, 3);
            Assert.Equal(128UL << 20, seen.Statistics.MemLimitBytes);
            await master.SendAsync(new MasterMessage { Kill = new MasterMessage.Types.KillTask { FrameworkId = "fw1", TaskId = "busy", KillPolicy = new KillPolicy { GracePeriodSeconds = 0.2 } } });
            while (true)
            {
                // Each update is acknowledged, so the next one of the task comes up.
                var batch = await NextAsync(master, AgentMessage.MessageOneofCase.StatusUpdates, cts.Token);
                foreach (var u in batch.StatusUpdates.Updates)
                {
                    await master.SendAsync(new MasterMessage { Acks = new MasterMessage.Types.StatusAcks { Acks = { new MasterMessage.Types.StatusAck { FrameworkId = u.FrameworkId, TaskId = u.Status.TaskId, Uuid = u.Status.Uuid } } } });
                }
                if (batch.StatusUpdates.Updates.Any(u => u.Status.TaskId == "busy" && u.Status.State == TaskState.TaskKilled))
                {
                    break;
                }
            }
        }
        finally
        {
            await cts.CancelAsync();
            Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(20)));
            Directory.Delete(work, true);
        }
    }

    [Fact]
    public async Task Agent_adopts_the_heartbeat_interval_the_master_announces_in_pings()
    {
        // Registered at 4 s; the pings announce 0.4 s: ten heartbeats then take ~4 s instead of
        // 40 s. (Intervals long enough that a loaded machine's stall of a second does not look
        // like a lost master: silence is allowed 3 intervals + 0.2 s.)
        await using var master = await TestMasterEndpoint.StartAsync();
        master.RegisteredIntervalSeconds = 4;
        master.PingIntervalSeconds = 0.4;
        var work = Directory.CreateTempSubdirectory("agent-heartbeat-").FullName;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var options = new AgentOptions { WorkDir = work, Resources = "cpus:1;mem:256", Isolation = "none" };
        options.Masters.Add(master.Address);
        var run = AgentHost.RunAsync(options, cts.Token);
        try
        {
            await NextAsync(master, AgentMessage.MessageOneofCase.Register, cts.Token);
            await NextAsync(master, AgentMessage.MessageOneofCase.Heartbeat, cts.Token); // answered with the new interval
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
            bound.CancelAfter(TimeSpan.FromSeconds(15));
            var sequence = 0UL;
            for (var i = 0; i < 10; i++)
            {
                var next = (await NextAsync(master, AgentMessage.MessageOneofCase.Heartbeat, bound.Token)).Heartbeat.Sequence;
                Assert.True(next > sequence, $"heartbeat {next} after {sequence}: the agent reconnected instead of adopting the interval");
                sequence = next;
            }
            Assert.Equal(1, master.Connections);
        }
        finally
        {
            await cts.CancelAsync();
            Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(20)));
            Directory.Delete(work, true);
        }
    }

    [Fact]
    public async Task Tasks_launched_on_a_link_that_drops_meanwhile_are_in_the_next_registration()
    {
        // The master takes a task it launched on the old stream but does not find in the next
        // registration for dropped; so the agent must have taken the whole launch (a large one
        // here, slow on a loaded host) before it registers again, although its link timed out
        // in the middle of it.
        const int Tasks = 2000;
        await using var master = await TestMasterEndpoint.StartAsync();
        master.RegisteredIntervalSeconds = 0.5;
        var work = Directory.CreateTempSubdirectory("agent-relink-").FullName;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var options = new AgentOptions { WorkDir = work, Resources = "cpus:2;mem:1024", Isolation = "none" };
        options.Masters.Add(master.Address);
        var run = AgentHost.RunAsync(options, cts.Token);
        try
        {
            await NextAsync(master, AgentMessage.MessageOneofCase.Register, cts.Token);
            var launch = new MasterMessage.Types.LaunchTasks { Framework = AgentHarness.Framework };
            for (var i = 0; i < Tasks; i++)
            {
                launch.Tasks.Add(new TaskInfo { TaskId = $"t{i}", AgentId = "agent-1", Container = new ContainerInfo { Type = ContainerInfo.Types.Type.Mock } });
            }
            await master.SendAsync(new MasterMessage { Launch = launch });
            // From now on the master is silent: the link times out (3 × 0.5 s + 0.2 s) while the
            // agent is still launching.
            master.Silent = true;
            var again = (await NextAsync(master, AgentMessage.MessageOneofCase.Register, cts.Token)).Register;
            var listed = again.Tasks.Select(t => t.TaskId).ToHashSet(StringComparer.Ordinal);
            Assert.Equal(Tasks, listed.Count);
        }
        finally
        {
            await cts.CancelAsync();
            Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(60)));
            Directory.Delete(work, true);
        }
    }

    private static async Task<AgentMessage> NextAsync(TestMasterEndpoint master, AgentMessage.MessageOneofCase kind, CancellationToken ct)
    {
        while (true)
        {
            var m = await master.FromAgent.Reader.ReadAsync(ct);
            if (m.MessageCase == kind)
            {
                return m;
            }
        }
    }
}
