using Sched.V1;

namespace Scheduler.Master.Tests.Harness;

/// <summary>Resource shorthands for tests.</summary>
public static class Res
{
    public static Resource Scalar(string name, double value) => new() { Name = name, Scalar = value };

    public static List<Resource> Of(double cpus, double mem) => [Scalar("cpus", cpus), Scalar("mem", mem)];

    /// <summary>Sums scalar resources by name.</summary>
    public static Dictionary<string, double> Sum(IEnumerable<Resource> resources)
    {
        var sums = new Dictionary<string, double>();
        foreach (var r in resources.Where(r => r.ValueCase == Resource.ValueOneofCase.Scalar))
        {
            sums[r.Name] = Math.Round(sums.GetValueOrDefault(r.Name) + r.Scalar, 3);
        }
        return sums;
    }

    public static double Get(IEnumerable<Resource> resources, string name) => Sum(resources).GetValueOrDefault(name);
}
