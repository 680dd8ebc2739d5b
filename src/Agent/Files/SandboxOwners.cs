using System.Collections.Concurrent;

namespace Scheduler.Agent.Files;

/// <summary>
/// The principal that registered each framework with sandboxes on this agent, as the master sent
/// it with the framework's tasks: who owns, and so may read, <c>sandboxes/FRAMEWORK/…</c>. Kept
/// in files (<c>meta/owners/FRAMEWORK</c>) so that sandboxes stay readable by their owner after
/// the tasks end and after the agent restarts.
/// </summary>
public sealed class SandboxOwners
{
    private readonly string _dir;
    private readonly ConcurrentDictionary<string, string> _known = new(StringComparer.Ordinal);

    public SandboxOwners(string dir)
    {
        ArgumentException.ThrowIfNullOrEmpty(dir);
        _dir = dir;
        Directory.CreateDirectory(dir);
    }

    /// <summary>Records <paramref name="principal"/> as the owner of <paramref name="frameworkId"/>'s
    /// sandboxes (nothing when empty: a framework of an anonymous cluster).</summary>
    public void Record(string frameworkId, string principal)
    {
        if (string.IsNullOrEmpty(principal) || !AgentCore.IsSafeId(frameworkId) || (_known.TryGetValue(frameworkId, out var known) && known == principal))
        {
            return;
        }
        var path = Path.Combine(_dir, frameworkId);
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, principal);
        File.Move(temporary, path, overwrite: true);
        _known[frameworkId] = principal;
    }

    /// <summary>The owner of <paramref name="frameworkId"/>'s sandboxes; null when none is known.</summary>
    public string? OwnerOf(string frameworkId)
    {
        if (!AgentCore.IsSafeId(frameworkId))
        {
            return null;
        }
        if (_known.TryGetValue(frameworkId, out var owner))
        {
            return owner;
        }
        try
        {
            owner = File.ReadAllText(Path.Combine(_dir, frameworkId)).Trim();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        return owner.Length == 0 ? null : _known.GetOrAdd(frameworkId, owner);
    }
}
