using Sched.V1;
using Scheduler.Protocol.Resources;

namespace Scheduler.Agent.Resources;

/// <summary>
/// The agent's command-line forms of resources (<c>cpus:4;mem:4096;ports:[31000-32000]</c>,
/// <c>cpus(web):2</c> for a static reservation, <c>{a,b}</c> sets) and attributes
/// (<c>rack:r1;zone:a</c>): the protocol's one parser (<see cref="Protocol.Resources.ResourceText"/>,
/// <see cref="AttributeText"/>) and its exact arithmetic.
/// </summary>
public static class ResourceText
{
    /// <summary>Parses resources; throws <see cref="ResourceFormatException"/> (a <see cref="FormatException"/>)
    /// naming the bad entry and the expected syntax.</summary>
    public static List<Resource> ParseResources(string text) => Protocol.Resources.ResourceText.Parse(text ?? "");

    /// <summary>Parses attributes; numbers become scalars, <c>[a-b]</c> ranges, <c>{x,y}</c> sets, the rest text.</summary>
    public static List<Sched.V1.Attribute> ParseAttributes(string text) => AttributeText.Parse(text);

    /// <summary>The total scalar of a resource name (all roles), or 0, summed exactly (three decimals).</summary>
    public static double Scalar(IEnumerable<Resource> resources, string name) =>
        FixedScalar.ToDouble(resources.Where(r => r.Name == name && r.ValueCase == Resource.ValueOneofCase.Scalar).Sum(r => FixedScalar.ToFixed(r.Scalar)));
}
