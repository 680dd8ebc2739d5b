using System.Globalization;
using Sched.V1;

namespace Scheduler.Master.Telemetry;

/// <summary>Reads this process's memory: RSS from <c>/proc/self/status</c>, heap figures from the GC.</summary>
public static class ProcessMemoryReader
{
    public static ProcessMemory Read()
    {
        var gc = GC.GetGCMemoryInfo();
        var memory = new ProcessMemory
        {
            GcHeapBytes = (ulong)Math.Max(0, gc.HeapSizeBytes),
            GcCommittedBytes = (ulong)Math.Max(0, gc.TotalCommittedBytes),
            GcTotalMemoryBytes = (ulong)Math.Max(0, GC.GetTotalMemory(forceFullCollection: false)),
            GcFragmentedBytes = (ulong)Math.Max(0, gc.FragmentedBytes),
            GcFullCollections = (uint)GC.CollectionCount(2),
        };
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    memory.RssBytes = Kilobytes(line);
                }
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    memory.PeakRssBytes = Kilobytes(line);
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return memory;
    }

    private static ulong Kilobytes(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return parts.Length >= 2 && ulong.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var kb) ? kb * 1024 : 0;
    }
}
