using Scheduler.Samples.Batch;
using Scheduler.Samples.Service;

namespace Scheduler.Cli.Demo;

/// <summary>One role as the master reports it.</summary>
public sealed record RoleLine(string Role, double DominantShare, int RunningTasks, string Allocated);

/// <summary>What the demo shows at one moment.</summary>
public sealed record DemoSnapshot(TimeSpan Elapsed, IReadOnlyList<RoleLine> Roles, BatchProgress Batch, ServiceProgress Service, IReadOnlyList<string> Events);
