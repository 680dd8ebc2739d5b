using System.Globalization;
using Sched.V1;

namespace Scheduler.Agent.Resources;

/// <summary>
/// What this machine offers when <c>--resources</c> does not say: all cores, total memory less a
/// 1 GiB reserve (but at least half), the work dir's filesystem, ports 31000-32000. Entries given
/// in <c>--resources</c> replace the detected ones of the same name.
/// </summary>
public static class ResourceDetector
{
    public const long MemoryReserveMiB = 1024;

    public static List<Resource> Detect(string workDir, string configured)
    {
        var given = ResourceText.ParseResources(configured);
        var names = given.Select(r => r.Name).ToHashSet(StringComparer.Ordinal);
        var result = new List<Resource>(given);
        if (!names.Contains("cpus"))
        {
            result.Add(new Resource { Name = "cpus", Scalar = Environment.ProcessorCount });
        }
        if (!names.Contains("mem"))
        {
            var totalMiB = TotalMemoryMiB();
            var mem = Math.Max(totalMiB / 2, totalMiB - MemoryReserveMiB);
            result.Add(new Resource { Name = "mem", Scalar = mem });
        }
        if (!names.Contains("disk"))
        {
            result.Add(new Resource { Name = "disk", Scalar = DiskMiB(workDir) });
        }
        if (!names.Contains("ports"))
        {
            var ports = new Ranges();
            ports.Range.Add(new Sched.V1.Range { Begin = 31000, End = 32000 });
            result.Add(new Resource { Name = "ports", Ranges = ports });
        }
        return result;
    }

    /// <summary>Total physical memory in MiB, from /proc/meminfo (falls back to the GC's view).</summary>
    public static long TotalMemoryMiB()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                {
                    var kb = long.Parse(line["MemTotal:".Length..].Replace("kB", "", StringComparison.Ordinal).Trim(), CultureInfo.InvariantCulture);
                    return kb / 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024 * 1024);
    }

    /// <summary>Size in MiB of the filesystem holding <paramref name="path"/>.</summary>
    public static long DiskMiB(string path)
    {
        Directory.CreateDirectory(path);
        var full = Path.GetFullPath(path);
        var drive = DriveInfo.GetDrives()
            .Where(d => d.IsReady && full.StartsWith(d.RootDirectory.FullName, StringComparison.Ordinal))
            .OrderByDescending(d => d.RootDirectory.FullName.Length)
            .FirstOrDefault();
        return drive is null ? 0 : drive.TotalSize / (1024 * 1024);
    }
}
