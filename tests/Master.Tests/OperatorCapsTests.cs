using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Grpc.Core;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>Operator-set caps on what a framework or an agent may make the master keep.</summary>
public sealed class OperatorCapsTests
{
    private static async Task<RpcException> SubscribeRefusedAsync(MasterFixture master, FrameworkInfo info)
    {
        var e = await Assert.ThrowsAnyAsync<Exception>(() => new TestFramework(master.Channel, info).SubscribeAsync());
        var rpc = Assert.IsType<RpcException>(e.InnerException ?? e);
        Assert.Equal(StatusCode.InvalidArgument, rpc.StatusCode);
        return rpc;
    }

    [Fact]
    public async Task A_failover_timeout_above_the_cap_is_refused_naming_the_option()
    {
        await using var master = await MasterFixture.StartAsync(o => o.MaxFailoverTimeout = TimeSpan.FromHours(1));
        var refused = await SubscribeRefusedAsync(master, new FrameworkInfo { Name = "fw", Roles = { "default" }, FailoverTimeoutSeconds = 1e12 });
        Assert.Contains("at most 3600 s (--max-failover-timeout)", refused.Status.Detail, StringComparison.Ordinal);
        await using var ok = new TestFramework(master.Channel, new FrameworkInfo { Name = "fw", Roles = { "default" }, FailoverTimeoutSeconds = 3600 });
        Assert.NotEmpty((await ok.SubscribeAsync()).FrameworkId);
    }

    [Fact]
    public async Task More_roles_than_the_cap_are_refused_naming_the_option()
    {
        await using var master = await MasterFixture.StartAsync(o => o.MaxRolesPerFramework = 3);
        var info = new FrameworkInfo { Name = "fw", Capabilities = { FrameworkCapability.MultiRole } };
        info.Roles.AddRange(Enumerable.Range(0, 4).Select(i => $"r{i}"));
        var refused = await SubscribeRefusedAsync(master, info);
        Assert.Contains("at most 3 per framework (--max-roles-per-framework)", refused.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_agent_with_more_resource_kinds_than_the_cap_is_refused_naming_the_option()
    {
        await using var master = await MasterFixture.StartAsync(o => o.MaxAgentResourceKinds = 4);
        var resources = Enumerable.Range(0, 5).Select(i => Res.Scalar($"kind{i}", 1)).ToList();
        await using var agent = new TestAgentLink(master.Channel, resources);
        var e = await Assert.ThrowsAnyAsync<Exception>(agent.ConnectAsync);
        var rpc = Assert.IsType<RpcException>(e.InnerException ?? e);
        Assert.Equal(StatusCode.InvalidArgument, rpc.StatusCode);
        Assert.Contains("at most 4 (--max-agent-resource-kinds)", rpc.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(await master.GetAgentsAsync());
    }
}
