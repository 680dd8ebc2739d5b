using System.Diagnostics;
using System.Text.RegularExpressions;
using Xunit;

namespace Scheduler.Integration.Tests;

/// <summary>The README's first command, run as a newcomer would (without a terminal).</summary>
public sealed partial class DemoTests
{
    [Fact]
    public async Task The_demo_runs_to_completion_in_under_a_minute_and_leaves_nothing_behind()
    {
        var clock = Stopwatch.StartNew();
        var demo = await Schedctl.RunAsync(TimeSpan.FromSeconds(90), "demo");
        clock.Stop();
        Assert.True(demo.ExitCode == 0, demo.ToString());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"the demo took {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.Contains("60/60 tasks finished", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("replacement instance running", demo.Stdout, StringComparison.Ordinal);
        Assert.Contains("no processes or files left behind", demo.Stdout, StringComparison.Ordinal);

        var workDir = WorkDirLine().Match(demo.Stdout).Groups["dir"].Value;
        Assert.False(string.IsNullOrEmpty(workDir), demo.Stdout);
        Assert.False(Directory.Exists(workDir), $"{workDir} was left behind");
        var leftovers = Directory.EnumerateDirectories("/proc")
            .Where(d => int.TryParse(Path.GetFileName(d), out _))
            .Where(d =>
            {
                try
                {
                    return File.ReadAllText(Path.Combine(d, "cmdline")).Contains(workDir, StringComparison.Ordinal);
                }
                catch (IOException)
                {
                    return false;
                }
            }).ToList();
        Assert.Empty(leftovers);
    }

    [GeneratedRegex(@"work dir (?<dir>/\S+)")]
    private static partial Regex WorkDirLine();
}
