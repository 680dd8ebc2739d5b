using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sched.V1;
using Scheduler.Agent.Isolation;
using Scheduler.Agent.Resources;

namespace Scheduler.Agent;

/// <summary>
/// Runs many simulated agents in one process for throughput work: each has its own work dir,
/// checkpointed status update queue and real <c>AgentLink.Connect</c> stream to the masters,
/// no isolation and no AgentFiles service. Meant for MOCK tasks (container type MOCK); other task
/// types would run real processes.
/// </summary>
public sealed class SimulatedAgentHost
{
    /// <summary>Runs <paramref name="count"/> agents until cancelled.</summary>
    /// <param name="resources">Resources of each agent (Mesos syntax), e.g. <c>cpus:8;mem:16384</c>.</param>
    /// <param name="registered">Called with each agent id once it has registered.</param>
    public static async Task<int> RunAsync(int count, IReadOnlyList<string> masters, string workDir, string resources, CancellationToken cancellationToken,
        ILoggerFactory? loggerFactory = null, Action<string>? registered = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var log = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Scheduler.Agent.Simulated");
        var parsed = ResourceText.ParseResources(resources);
        var runs = new List<Task<int>>();
        var cores = new List<AgentCore>();
        for (var i = 0; i < count; i++)
        {
            var options = new AgentOptions { WorkDir = Path.Combine(workDir, $"agent-{i}"), Isolation = "none", Hostname = $"sim-{i}" };
            options.Masters.AddRange(masters);
            var core = new AgentCore(options, new NoIsolator(), TimeProvider.System, log);
            core.Recover();
            cores.Add(core);
            var index = i;
            AgentInfo Info()
            {
                var info = new AgentInfo { Hostname = options.Hostname, Address = $"sim-{index}:0", Version = "sim" };
                info.Resources.AddRange(parsed.Select(r => r.Clone()));
                return info;
            }
            var link = new MasterLink(core, options, Info, log, TimeProvider.System, new Random(index));
            if (registered is not null)
            {
                _ = link.Registered.Task.ContinueWith(t => registered(t.Result), TaskScheduler.Default);
            }
            runs.Add(link.RunAsync(cancellationToken));
        }
        var codes = await Task.WhenAll(runs);
        foreach (var core in cores)
        {
            await core.DisposeAsync();
        }
        return codes.FirstOrDefault(c => c != 0);
    }
}
