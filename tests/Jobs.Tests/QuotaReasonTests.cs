using Sched.V1;
using Scheduler.Channels;
using Scheduler.Jobs.Engine;

namespace Scheduler.Jobs.Tests;

/// <summary>The quota reason of pending instances, computed from the masters' roles and quotas.</summary>
public sealed class QuotaShortfallTests
{
    private static Resource Cpus(double n) => new() { Name = "cpus", Scalar = n };

    private static Resource Mem(double n) => new() { Name = "mem", Scalar = n };

    private static RoleState Role(string name, double allocatedCpus, double offeredCpus = 0, double allocatedMem = 0)
    {
        var r = new RoleState { Name = name, Allocated = { Cpus(allocatedCpus), Mem(allocatedMem) } };
        if (offeredCpus > 0)
        {
            r.Offered.Add(Cpus(offeredCpus));
        }
        return r;
    }

    private static GetQuotaResponse Limit(string role, params Resource[] limits) => new() { Quotas = { new QuotaInfo { Role = role, Limits = { limits } } } };

    private static Dictionary<string, double> Want(double cpus, double mem = 0) => new() { ["cpus"] = cpus, ["mem"] = mem };

    [Fact]
    public void A_role_at_its_limit_lacks_what_its_pending_instances_want_beyond_the_room()
    {
        var view = new QuotaShortfall(new GetRolesResponse { Roles = { Role("eng", 4) } }, Limit("eng", Cpus(8)));
        Assert.Equal(
            "role eng lacks 6 cpus under its quota limit (limit 8, 4 held by tasks, 10 wanted by 5 pending instances); raise the limit ('schedctl quota set eng …') or ask for less",
            view.Reason("eng", Want(10), 5));
    }

    [Fact]
    public void Outstanding_offers_count_as_room_not_as_held()
    {
        var view = new QuotaShortfall(new GetRolesResponse { Roles = { Role("eng", 8, offeredCpus: 4) } }, Limit("eng", Cpus(8)));
        Assert.Contains("lacks 6 cpus", view.Reason("eng", Want(10), 5), StringComparison.Ordinal);
        Assert.Null(view.Reason("eng", Want(4), 2));
    }

    [Fact]
    public void A_limit_on_a_role_above_binds_its_subroles()
    {
        var roles = new GetRolesResponse { Roles = { Role("notebooks", 2), Role("notebooks/alice", 1), Role("notebooks/bob", 1) } };
        var view = new QuotaShortfall(roles, Limit("notebooks", Cpus(2)));
        Assert.Equal(
            "role notebooks (above notebooks/carol) lacks 0.5 cpus under its quota limit (limit 2, 2 held by tasks, 0.5 wanted by 1 pending instance); raise the limit ('schedctl quota set notebooks …') or ask for less",
            view.Reason("notebooks/carol", Want(0.5), 1));
    }

    [Fact]
    public void A_parent_the_master_does_not_list_is_summed_from_its_topmost_subroles()
    {
        var roles = new GetRolesResponse { Roles = { Role("team/a", 3), Role("team/a/x", 2), Role("team/b", 1) } };
        var view = new QuotaShortfall(roles, Limit("team", Cpus(5)));
        Assert.Contains("4 held by tasks", view.Reason("team/b", Want(2), 1), StringComparison.Ordinal);
    }

    [Fact]
    public void Memory_is_named_in_MiB_and_room_or_no_limit_gives_no_reason()
    {
        var view = new QuotaShortfall(new GetRolesResponse { Roles = { Role("eng", 1, allocatedMem: 900) } }, Limit("eng", Cpus(4), Mem(1024)));
        Assert.Contains("lacks 76 MiB mem", view.Reason("eng", Want(1, 200), 1), StringComparison.Ordinal);
        Assert.Null(view.Reason("eng", Want(1, 100), 1));
        Assert.Null(view.Reason("other", Want(100, 100000), 1));
        Assert.False(new QuotaShortfall(new GetRolesResponse(), new GetQuotaResponse()).AnyLimits);
    }
}

/// <summary>A role at its quota limit, on a real master: the pending instances say so, and a raised limit lets them start.</summary>
public sealed class QuotaReasonTests(TwoRackCluster cluster) : IClassFixture<TwoRackCluster>
{
    [Fact]
    public async Task Pending_instances_name_the_quota_shortfall_and_start_when_the_limit_is_raised()
    {
        using var channel = GrpcChannels.ForAddress(cluster.MasterAddress);
        var op = new Operator.OperatorClient(channel);
        await op.UpdateQuotaAsync(new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = "capped", Limits = { new Resource { Name = "cpus", Scalar = 1 } } } } });
        try
        {
            await cluster.Jobs.SubmitJobAsync(new SubmitJobRequest
            {
                JobFile = """
                    name: capped
                    type: service
                    role: capped
                    instances: 4
                    task: {command: 'sleep 600', resources: {cpus: 0.5, mem: 32}, kill_grace: 1s}
                    """,
            });
            var job = await cluster.UntilAsync("capped", j => j.Instances.Count(i => i.State == "running") == 2 && j.Instances.Count(i => i.PendingReason.Contains("under its quota limit", StringComparison.Ordinal)) == 2,
                TimeSpan.FromSeconds(60), "two instances running and two pending for the quota");
            Assert.All(job.Instances.Where(i => i.State == "pending"), i => Assert.StartsWith("role capped lacks 1 cpus under its quota limit (limit 1, 1 held by tasks, 1 wanted by 2 pending instances)", i.PendingReason, StringComparison.Ordinal));

            await op.UpdateQuotaAsync(new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = "capped", Limits = { new Resource { Name = "cpus", Scalar = 2 } } } } });
            await cluster.UntilAsync("capped", j => j.Instances.Count(i => i.State == "running") == 4, TimeSpan.FromSeconds(60), "all four running under the raised limit");
        }
        finally
        {
            await cluster.Jobs.StopJobAsync(new StopJobRequest { Name = "capped", Purge = true });
        }
    }
}
