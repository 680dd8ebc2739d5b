using Scheduler.Agent.Native;
using Xunit;

namespace Scheduler.Agent.Tests;

/// <summary>A fact that needs root (cgroups, other users): reported as skipped, with the reason,
/// when the tests do not run as root — never passed silently.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute(string why)
    {
        if (Libc.geteuid() != 0)
        {
            Skip = $"needs root ({why}); CI runs the tests as root";
        }
    }
}
