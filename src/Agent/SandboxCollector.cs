using Microsoft.Extensions.Logging;
using Scheduler.Agent.Resources;

namespace Scheduler.Agent;

/// <summary>
/// Removes sandboxes of tasks that are no longer known to the agent (terminal and acknowledged):
/// those older than <see cref="AgentOptions.SandboxMaxAge"/>, and, while the work dir's disk is
/// above <see cref="AgentOptions.SandboxDiskPressure"/>, the oldest first.
/// </summary>
public sealed class SandboxCollector(AgentCore core, AgentOptions options, ILogger logger)
{
    public IDisposable Start(CancellationToken cancellationToken)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _ = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(TimeSpan.FromMinutes(1));
            do
            {
                try
                {
                    Collect(DateTimeOffset.UtcNow);
                }
                catch (Exception e)
                {
                    logger.LogWarning(e, "sandbox collection failed");
                }
            }
            while (await timer.WaitForNextTickAsync(cts.Token).AsTask().ContinueWith(t => t.IsCompletedSuccessfully && t.Result, TaskScheduler.Default));
        }, CancellationToken.None);
        return cts;
    }

    /// <summary>One pass; returns the sandboxes removed.</summary>
    public List<string> Collect(DateTimeOffset now)
    {
        var live = core.Tasks.Select(t => t.SandboxDir(core.SandboxesDir)).ToHashSet(StringComparer.Ordinal);
        var candidates = new List<(string Dir, DateTime Modified)>();
        if (!Directory.Exists(core.SandboxesDir))
        {
            return [];
        }
        foreach (var fw in Directory.EnumerateDirectories(core.SandboxesDir))
        {
            foreach (var task in Directory.EnumerateDirectories(fw))
            {
                if (!live.Contains(task))
                {
                    candidates.Add((task, Directory.GetLastWriteTimeUtc(task)));
                }
            }
        }
        candidates.Sort((a, b) => a.Modified.CompareTo(b.Modified));
        var removed = new List<string>();
        foreach (var (dir, modified) in candidates)
        {
            if (now.UtcDateTime - modified > options.SandboxMaxAge || DiskUsedFraction() > options.SandboxDiskPressure)
            {
                Directory.Delete(dir, recursive: true);
                removed.Add(dir);
                logger.LogInformation("removed sandbox {Dir}", dir);
            }
        }
        return removed;
    }

    private double DiskUsedFraction()
    {
        var full = Path.GetFullPath(core.WorkDir);
        var drive = DriveInfo.GetDrives().Where(d => d.IsReady && full.StartsWith(d.RootDirectory.FullName, StringComparison.Ordinal))
            .OrderByDescending(d => d.RootDirectory.FullName.Length).FirstOrDefault();
        return drive is null || drive.TotalSize == 0 ? 0 : 1.0 - ((double)drive.AvailableFreeSpace / drive.TotalSize);
    }
}
