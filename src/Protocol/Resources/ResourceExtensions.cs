using Sched.V1;

namespace Scheduler.Protocol.Resources;

/// <summary>Resource arithmetic directly on proto lists (each call normalises through <see cref="ResourceSet"/>).</summary>
public static class ResourceExtensions
{
    /// <summary>Validates and normalises.</summary>
    /// <exception cref="InvalidResourceException">The resources are invalid.</exception>
    public static ResourceSet ToResourceSet(this IEnumerable<Resource> resources) =>
        resources as ResourceSet ?? ResourceSet.From(resources);

    public static List<Resource> Plus(this IEnumerable<Resource> a, IEnumerable<Resource> b) =>
        (a.ToResourceSet() + b.ToResourceSet()).ToList();

    /// <summary>Saturating difference (see <see cref="ResourceSet.Subtract"/>).</summary>
    public static List<Resource> Minus(this IEnumerable<Resource> a, IEnumerable<Resource> b) =>
        (a.ToResourceSet() - b.ToResourceSet()).ToList();

    /// <summary>Whether <paramref name="part"/> ⊆ <paramref name="whole"/>.</summary>
    public static bool ContainsAll(this IEnumerable<Resource> whole, IEnumerable<Resource> part) =>
        whole.ToResourceSet().Contains(part.ToResourceSet());

    public static double ScalarSum(this IEnumerable<Resource> resources, string name) =>
        resources.ToResourceSet().Scalar(name);

    public static IReadOnlyList<string> Validate(this IEnumerable<Resource> resources) => ResourceValidator.Validate(resources);

    public static string FormatResources(this IEnumerable<Resource> resources) => ResourceText.Format(resources);

    public static IReadOnlyDictionary<string, ResourceSet> GroupByReservationRole(this IEnumerable<Resource> resources) =>
        resources.ToResourceSet().ByReservationRole();

    public static IReadOnlyDictionary<string, ResourceSet> GroupByAllocationRole(this IEnumerable<Resource> resources) =>
        resources.ToResourceSet().ByAllocationRole();
}
