using System.Diagnostics;
using Scheduler.Agent.Isolation;
using Xunit;

namespace Scheduler.Agent.Tests.Contracts;

/// <summary>
/// What the executors rely on from every cgroup <see cref="IIsolator"/>: a container's cgroups are
/// created with its limits, a process that joins shows in them, <c>KillAll</c> leaves nothing
/// running, <c>Destroy</c> removes them, and <c>RemoveStale</c> takes only what is not kept. One
/// subclass per driver supplies it, or the reason this host cannot run it (the test is then
/// reported skipped). Real cgroups: root only.
/// </summary>
public abstract class IsolatorContractTests : IDisposable
{
    private readonly string _scope = "contract-" + Guid.NewGuid().ToString("N")[..8];
    private readonly List<Process> _processes = [];
    private IIsolator? _isolator;

    /// <summary>The driver for <paramref name="scope"/>, or null when this host lacks it.</summary>
    protected abstract IIsolator? TryCreate(string scope);

    /// <summary>Why <see cref="TryCreate"/> gives null on this host.</summary>
    protected abstract string Unavailable { get; }

    /// <summary>The <see cref="CgroupLayout.Kind"/> the driver reports.</summary>
    protected abstract string LayoutKind { get; }

    private IIsolator Isolator()
    {
        Skip.IfNot(AgentHarness.IsRoot, "needs root (cgroups); CI runs the tests as root");
        _isolator ??= TryCreate(_scope);
        Skip.If(_isolator is null, Unavailable);
        return _isolator!;
    }

    private Process Sleeper()
    {
        var p = Process.Start(new ProcessStartInfo("/bin/sleep", "1000") { UseShellExecute = false })!;
        _processes.Add(p);
        return p;
    }

    private static void Join(IContainerCgroup cgroup, Process p)
    {
        foreach (var procs in cgroup.ProcsFiles)
        {
            File.WriteAllText(procs, p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    [SkippableFact]
    public void A_container_is_created_with_its_limits_and_its_layout_names_the_driver()
    {
        var isolator = Isolator();
        var cgroup = isolator.Create("c1", new ContainerLimits(0.5, 64L << 20, 100));
        Assert.NotNull(cgroup);
        Assert.Equal("c1", cgroup.Id);
        Assert.NotEmpty(cgroup.ProcsFiles);
        Assert.All(cgroup.ProcsFiles, f => Assert.True(File.Exists(f), $"{f} does not exist"));
        Assert.Empty(cgroup.Pids());
        Assert.Equal(0u, cgroup.OomKills());
        Assert.Equal((ulong)(64L << 20), cgroup.Statistics().MemLimitBytes);
        Assert.Equal(LayoutKind, isolator.Layout("c1").Kind);
        Assert.NotNull(isolator.Open("c1"));
        cgroup.Destroy();
    }

    [SkippableFact]
    public async Task A_joined_process_shows_in_the_container_and_kill_all_leaves_nothing_running()
    {
        var isolator = Isolator();
        var cgroup = isolator.Create("c2", new ContainerLimits(0, 0, 0))!;
        var sleeper = Sleeper();
        Join(cgroup, sleeper);
        Assert.Contains(sleeper.Id, cgroup.Pids());
        Assert.NotNull(cgroup.Statistics());
        cgroup.KillAll();
        await sleeper.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Empty(cgroup.Pids());
        cgroup.Destroy();
        Assert.Null(isolator.Open("c2"));
    }

    [SkippableFact]
    public async Task Destroy_kills_what_is_left_and_removes_the_cgroups()
    {
        var isolator = Isolator();
        var cgroup = isolator.Create("c3", new ContainerLimits(0, 0, 0))!;
        var sleeper = Sleeper();
        Join(cgroup, sleeper);
        cgroup.Destroy();
        await sleeper.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.All(isolator.Layout("c3").RemoveDirs, d => Assert.False(Directory.Exists(d), $"{d} is left"));
        Assert.Null(isolator.Open("c3"));
    }

    [SkippableFact]
    public async Task Remove_stale_takes_only_the_containers_not_kept()
    {
        var isolator = Isolator();
        var kept = isolator.Create("keep", new ContainerLimits(0, 0, 0))!;
        var stale = isolator.Create("stale", new ContainerLimits(0, 0, 0))!;
        var sleeper = Sleeper();
        Join(stale, sleeper);
        var removed = isolator.RemoveStale(new HashSet<string> { "keep" });
        Assert.Equal(["stale"], removed);
        await sleeper.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Null(isolator.Open("stale"));
        Assert.NotNull(isolator.Open("keep"));
        kept.Destroy();
    }

    public void Dispose()
    {
        foreach (var p in _processes)
        {
            if (!p.HasExited)
            {
                p.Kill();
                p.WaitForExit();
            }
            p.Dispose();
        }
        if (_isolator is not null)
        {
            _isolator.RemoveStale(new HashSet<string>());
            _isolator.RemoveScopeIfEmpty();
        }
        GC.SuppressFinalize(this);
    }
}
