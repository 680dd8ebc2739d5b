using Scheduler.Agent.Isolation;
using Scheduler.Agent.Supervision;

namespace Scheduler.Agent.Execution;

/// <summary>
/// The executors an agent runs tasks with, by <see cref="IExecutor.Name"/>, and what they share
/// (the supervisor launcher with its pre-started pool). The agent core is given one and owns it
/// from then on: it is disposed with the core. Tests and other hosts compose their own.
/// </summary>
public sealed class ExecutorSet : IDisposable
{
    private readonly Dictionary<string, IExecutor> _byName = new(StringComparer.Ordinal);
    private readonly IDisposable? _shared;

    /// <param name="executors">At least a <c>process</c> executor (the default kind); a later
    /// executor of the same name replaces an earlier one.</param>
    /// <param name="shared">What the executors share and the set disposes (the launcher), if anything.</param>
    public ExecutorSet(IEnumerable<IExecutor> executors, IDisposable? shared = null)
    {
        ArgumentNullException.ThrowIfNull(executors);
        foreach (var e in executors)
        {
            _byName[e.Name] = e;
        }
        if (!_byName.ContainsKey("process"))
        {
            throw new ArgumentException("An agent needs a 'process' executor: tasks without a container type run with it.", nameof(executors));
        }
        _shared = shared;
    }

    /// <summary>The daemon's executors: process and OCI (both under <paramref name="isolator"/>,
    /// started by native supervisors) and mock.</summary>
    public static ExecutorSet CreateDefault(AgentOptions options, IIsolator isolator, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        var launcher = new SupervisorLauncher(options.SupervisorCommand.Count > 0 ? options.SupervisorCommand : SupervisorLauncher.DefaultCommand(), options.SupervisorPool);
        var workDir = Path.GetFullPath(options.WorkDir);
        return new ExecutorSet(
            [
                new ProcessExecutor(isolator, launcher, options),
                new MockExecutor(time),
                new OciExecutor(isolator, launcher, options, new Images.ImageStore(Path.Combine(workDir, "images"), options.MaxImageBytes)),
            ],
            launcher);
    }

    /// <summary>The executor named <paramref name="name"/>, or null.</summary>
    public IExecutor? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>The names of the executors in the set.</summary>
    public IReadOnlyCollection<string> Names => _byName.Keys;

    public void Dispose() => _shared?.Dispose();
}
