using Google.Protobuf;
using Grpc.Core;
using Sched.V1;
using Scheduler.Master.Tests.Harness;
using Scheduler.Protocol;
using Xunit;

namespace Scheduler.Master.Tests;

/// <summary>GetState, GetAgents and GetTasks answer in pages under the size bound (a quarter of
/// the message limit): here a 64 KiB limit with 40 agents of about 3 KiB of attributes and 40
/// tasks with 1 KiB labels, the shape of tens of thousands of agents against the default 4 MiB.
/// In one message each answer exceeds the limit and the call fails.</summary>
public sealed class PagedAnswerTests
{
    private const int Limit = 64 * 1024;

    [Fact]
    public async Task State_agents_and_tasks_over_the_bound_come_in_pages_that_hold_everything_once()
    {
        await using var cluster = await Cluster.StartAsync(o => o.MaxMessageSize = Limit);
        var agents = new List<TestAgentLink>();
        try
        {
            await OfferEventSizeTests.ConnectLargeAgentsAsync(cluster, agents);
            agents.ForEach(a => a.AutoFinish = false);
            var fw = await cluster.AddFrameworkAsync();
            var offer = await fw.NextOfferAsync();
            var tasks = Enumerable.Range(0, 40).Select(i =>
            {
                var task = TestFramework.MockTask($"t{i:D2}", offer, Res.Of(0.01, 1));
                task.Labels["note"] = new string('x', 1024);
                return task;
            }).ToList();
            await fw.AcceptAsync([offer.Id], tasks); // live on the master from here on

            // One call: a first page under the bound, with a token for the rest.
            var first = await cluster.Master.Operator(OperatorMethods.GetAgents, new GetAgentsRequest());
            Assert.InRange(first.CalculateSize(), 1, Limit / 4);
            Assert.InRange(first.Agents.Count, 1, 39);
            Assert.NotEmpty(first.NextPageToken);

            var pages = 0;
            var all = await Pages.AllAsync(new GetAgentsRequest(), async r =>
            {
                var page = await cluster.Master.Operator(OperatorMethods.GetAgents, r);
                pages++;
                Assert.True(page.CalculateSize() <= Limit / 4, $"a page of {page.CalculateSize()} bytes exceeds the bound of {Limit / 4}");
                return page;
            });
            Assert.True(pages > 1);
            AssertSameIds(agents.Select(a => a.AgentId), all.Agents.Select(a => a.Info.Id));

            var allTasks = await Pages.AllAsync(new GetTasksRequest(), r => Bounded(cluster.Master.Operator(OperatorMethods.GetTasks, r)));
            AssertSameIds(tasks.Select(t => t.TaskId), allTasks.Tasks.Select(t => t.TaskId));

            var state = await Pages.AllAsync(new GetStateRequest(), r => Bounded(cluster.Master.Operator(OperatorMethods.GetState, r)));
            AssertSameIds(agents.Select(a => a.AgentId), state.Agents.Select(a => a.Info.Id));
            AssertSameIds(tasks.Select(t => t.TaskId), state.Tasks.Select(t => t.TaskId));
            Assert.Equal(fw.FrameworkId, Assert.Single(state.Frameworks).Info.Id);
            Assert.NotNull(state.Master);
            Assert.Contains(state.Roles, r => r.Name == "*" || r.Frameworks.Contains(fw.FrameworkId));

            // A smaller page asked by the client is honoured.
            var small = await cluster.Master.Operator(OperatorMethods.GetAgents, new GetAgentsRequest { PageBytes = 8 * 1024 });
            Assert.True(small.CalculateSize() <= 8 * 1024, $"a page of {small.CalculateSize()} bytes exceeds the 8 KiB asked");

            var bad = await Assert.ThrowsAsync<RpcException>(() => cluster.Master.Operator(OperatorMethods.GetAgents, new GetAgentsRequest { PageToken = "not-a-token" }));
            Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
            Assert.Contains("start again without a page_token", bad.Status.Detail, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var agent in agents)
            {
                await agent.DisposeAsync();
            }
        }
    }

    private static async Task<T> Bounded<T>(Task<T> call)
        where T : IMessage
    {
        var page = await call;
        Assert.True(page.CalculateSize() <= Limit / 4, $"a page of {page.CalculateSize()} bytes exceeds the bound of {Limit / 4}");
        return page;
    }

    private static void AssertSameIds(IEnumerable<string> expected, IEnumerable<string> actual)
    {
        var list = actual.ToList();
        Assert.Equal(list.Count, list.Distinct(StringComparer.Ordinal).Count());
        Assert.Equal(expected.Order(StringComparer.Ordinal), list.Order(StringComparer.Ordinal));
    }
}
