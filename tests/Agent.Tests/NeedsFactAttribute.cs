using Scheduler.Agent.Isolation;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>What a test needs from the machine beyond the agent's own code.</summary>
[Flags]
public enum Needs
{
    None = 0,

    /// <summary>Root: cgroups, switching users, mounts.</summary>
    Root = 1,

    /// <summary><c>busybox-static</c> at /bin/busybox (tiny images, an HTTP server).</summary>
    Busybox = 2,

    /// <summary>runc and umoci (OCI containers and image layouts); implies root and busybox.</summary>
    Containers = 4,

    /// <summary>skopeo (image archives).</summary>
    Skopeo = 8,

    /// <summary>A cgroup2 mount with <c>cgroup.procs</c> (unified or hybrid); implies root.</summary>
    Cgroup2 = 16,
}

/// <summary>
/// A fact that xunit reports as skipped, with what is missing and how CI provides it, when the
/// machine lacks what the test needs (never as passed). As root with the Debian packages that
/// <c>test.sh</c> installs, every such test runs.
/// </summary>
public sealed class NeedsFactAttribute : FactAttribute
{
    public NeedsFactAttribute(Needs needs)
    {
        var missing = Missing(needs);
        if (missing.Count > 0)
        {
            Skip = "needs " + string.Join(", ", missing) + " (CI runs as root and test.sh installs the packages)";
        }
    }

    /// <summary>The unmet needs among <paramref name="needs"/>, in words.</summary>
    public static IReadOnlyList<string> Missing(Needs needs)
    {
        if (needs.HasFlag(Needs.Containers))
        {
            needs |= Needs.Root | Needs.Busybox;
        }
        if (needs.HasFlag(Needs.Cgroup2))
        {
            needs |= Needs.Root;
        }
        var missing = new List<string>();
        if (needs.HasFlag(Needs.Root) && !AgentHarness.IsRoot)
        {
            missing.Add("root");
        }
        if (needs.HasFlag(Needs.Containers) && !File.Exists("/usr/sbin/runc"))
        {
            missing.Add("runc (apt-get install runc)");
        }
        if (needs.HasFlag(Needs.Containers) && !File.Exists("/usr/bin/umoci"))
        {
            missing.Add("umoci (apt-get install umoci)");
        }
        if (needs.HasFlag(Needs.Busybox) && !File.Exists("/bin/busybox"))
        {
            missing.Add("busybox-static at /bin/busybox (apt-get install busybox-static)");
        }
        if (needs.HasFlag(Needs.Skopeo) && !File.Exists("/usr/bin/skopeo"))
        {
            missing.Add("skopeo (apt-get install skopeo)");
        }
        if (needs.HasFlag(Needs.Cgroup2))
        {
            var v2 = CgroupFiles.Mounts().V2;
            if (v2 is null || !File.Exists(Path.Combine(v2, "cgroup.procs")))
            {
                missing.Add("a cgroup2 mount (this host has none with cgroup.procs)");
            }
        }
        return missing;
    }
}
