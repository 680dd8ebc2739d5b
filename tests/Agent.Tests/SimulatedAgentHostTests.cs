using System.Collections.Concurrent;
using Sched.V1;
using Xunit;

namespace Scheduler.Agent.Tests;

public class SimulatedAgentHostTests
{
    [Fact]
    public async Task Each_simulated_agent_registers_on_its_own_stream_with_its_resources()
    {
        await using var master = await TestMasterEndpoint.StartAsync();
        var work = Directory.CreateTempSubdirectory("sim-agents-").FullName;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var ids = new ConcurrentBag<string>();
        var run = SimulatedAgentHost.RunAsync(5, [master.Address], work, "cpus:4;mem:8192", cts.Token, registered: ids.Add);
        try
        {
            var registers = 0;
            while (registers < 5)
            {
                var m = await master.FromAgent.Reader.ReadAsync(cts.Token);
                if (m.MessageCase == AgentMessage.MessageOneofCase.Register)
                {
                    registers++;
                    Assert.Equal(4, m.Register.AgentInfo.Resources.Single(r => r.Name == "cpus").Scalar);
                }
            }
            Assert.Equal(5, master.Connections);
        }
        finally
        {
            await cts.CancelAsync();
            Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(20)));
            Directory.Delete(work, true);
        }
    }
}
