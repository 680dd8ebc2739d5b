using Sched.V1;
using Scheduler.Allocation;
using Scheduler.Protocol.Resources;

namespace Scheduler.Bench.Allocation;

/// <summary>A benchmark cluster: agents of <c>cpus:2;mem:1024;disk:4096;ports:[31000-32000]</c>, frameworks spread over roles.</summary>
internal sealed class Cluster
{
    public const string AgentResources = "cpus:2;mem:1024;disk:4096;ports:[31000-32000]";

    private Cluster(HierarchicalDrfAllocator allocator, BenchClock clock, int agents, int frameworks, int roles)
    {
        Allocator = allocator;
        Clock = clock;
        Agents = agents;
        Frameworks = frameworks;
        Roles = roles;
    }

    public HierarchicalDrfAllocator Allocator { get; }

    public BenchClock Clock { get; }

    public int Agents { get; }

    public int Frameworks { get; }

    public int Roles { get; }

    /// <summary>What each framework currently holds (grant resources), by (framework, agent).</summary>
    public List<OfferGrant> Held { get; } = [];

    /// <param name="roles">Number of roles the frameworks are spread over (round-robin).</param>
    /// <param name="guaranteeCpusPerRole">When positive, each role gets this cpus guarantee.</param>
    public static Cluster Build(int agents, int frameworks, int roles, double guaranteeCpusPerRole = 0, int seed = 42)
    {
        var clock = new BenchClock();
        var allocator = new HierarchicalDrfAllocator(new AllocatorOptions(), clock, new Random(seed));
        var resources = ResourceSet.Parse(AgentResources).ToList();
        for (var a = 0; a < agents; a++)
        {
            var attrs = new List<Sched.V1.Attribute> { new() { Name = "rack", Text = $"r{a % 40}" } };
            allocator.AddAgent(new AgentSpec($"agent-{a:D6}", $"host-{a:D6}", resources, attrs), []);
        }

        if (guaranteeCpusPerRole > 0)
        {
            for (var r = 0; r < roles; r++)
            {
                var q = new QuotaInfo { Role = RoleOf(r) };
                q.Guarantees.Add(new Resource { Name = "cpus", Scalar = guaranteeCpusPerRole });
                allocator.UpdateQuota(q);
            }
        }

        for (var f = 0; f < frameworks; f++)
        {
            allocator.AddFramework(new FrameworkSpec($"fw-{f:D5}", [RoleOf(f % roles)], [], [], [], []), []);
        }

        return new Cluster(allocator, clock, agents, frameworks, roles);
    }

    public static string RoleOf(int r) => $"role-{r:D4}";

    /// <summary>Runs a forced cycle, timing it (wall and thread CPU); returns the grants.</summary>
    public (IReadOnlyList<OfferGrant> Grants, double Ms, long AllocatedBytes) TimedCycle() => TimedCycle(out _);

    public (IReadOnlyList<OfferGrant> Grants, double Ms, long AllocatedBytes) TimedCycle(out double cpuMs)
    {
        Clock.Advance(TimeSpan.FromMilliseconds(100));
        var bytes = GC.GetAllocatedBytesForCurrentThread();
        var cpu = ThreadCpu.Now();
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        var grants = Allocator.Allocate(force: true);
        var ms = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        cpuMs = (ThreadCpu.Now() - cpu) / 1e6;
        return (grants, ms, GC.GetAllocatedBytesForCurrentThread() - bytes);
    }

    /// <summary>Returns everything held (no filter) so that the next cycle offers every agent again.</summary>
    public void RecoverAll()
    {
        foreach (var g in Held)
        {
            Allocator.RecoverResources(g.FrameworkId, g.AgentId, g.Resources, null);
        }

        Held.Clear();
    }

    /// <summary>Max/min dominant share over frameworks that hold something, and how many hold nothing.</summary>
    public (double Ratio, int Starved) Fairness()
    {
        var shares = Allocator.GetSnapshot().Frameworks.Select(f => f.DominantShare).ToList();
        var positive = shares.Where(s => s > 0).ToList();
        return (positive.Count == 0 ? double.NaN : positive.Max() / positive.Min(), shares.Count - positive.Count);
    }
}

/// <summary>Virtual time for the allocator; latency is measured with the real Stopwatch outside it.</summary>
internal sealed class BenchClock : TimeProvider
{
    private DateTimeOffset _now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>
/// CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), in nanoseconds: on a shared machine
/// wall time includes waiting for a core, CPU time does not.
/// </summary>
internal static unsafe partial class ThreadCpu
{
    private const int ClockThreadCpuTimeId = 3;

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, TimeSpec* value);

    public static long Now()
    {
        if (!OperatingSystem.IsLinux())
        {
            return System.Diagnostics.Stopwatch.GetTimestamp() * (1_000_000_000 / System.Diagnostics.Stopwatch.Frequency);
        }

        TimeSpec t;
        return ClockGetTime(ClockThreadCpuTimeId, &t) == 0 ? (t.Seconds * 1_000_000_000) + t.Nanoseconds : 0;
    }

    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
