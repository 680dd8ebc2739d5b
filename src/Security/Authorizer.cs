namespace Scheduler.Security;

/// <summary>
/// The policy in force: fixed, or read from an ACL file and read again when the file changes
/// (looked at most once a second). A bad edit keeps the previous policy and is reported by
/// <see cref="ReloadFailed"/>; the file is never half-applied.
/// </summary>
public sealed class Authorizer
{
    private readonly string? _path;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private AclPolicy _policy;
    private DateTime _stamp;
    private long _lastLook;

    private Authorizer(AclPolicy policy, string? path, DateTime stamp, TimeProvider time)
    {
        _policy = policy;
        _path = path;
        _stamp = stamp;
        _time = time;
        _lastLook = time.GetTimestamp();
    }

    /// <summary>Raised (on the calling thread) when a changed ACL file could not be read; the previous policy stays.</summary>
    public event Action<string>? ReloadFailed;

    /// <summary>Raised when a changed ACL file was read and is now in force.</summary>
    public event Action<string>? Reloaded;

    /// <summary>Where the policy comes from, for messages.</summary>
    public string Source => _path ?? "the built-in policy";

    public static Authorizer Fixed(AclPolicy policy) => new(policy, null, default, TimeProvider.System);

    /// <summary>Reads <paramref name="path"/>; throws <see cref="AclFileException"/> when it is not a valid ACL file.</summary>
    public static Authorizer FromFile(string path, TimeProvider? time = null)
    {
        var stamp = File.GetLastWriteTimeUtc(path);
        return new Authorizer(AclPolicyFile.Load(path), path, stamp, time ?? TimeProvider.System);
    }

    public AclPolicy Policy
    {
        get
        {
            if (_path is not null)
            {
                Refresh();
            }
            return _policy;
        }
    }

    public bool IsSuperuser(Caller caller) => Policy.IsSuperuser(caller);

    public bool Allows(Caller caller, AclAction action, string target) => Policy.Allows(caller, action, target);

    /// <summary>The message of a denied call: who, what, on what, and where the rules are.</summary>
    public string Denied(Caller caller, AclAction action, string target)
    {
        ArgumentNullException.ThrowIfNull(caller);
        return $"principal '{caller.Display}' may not {action.Name()} on {action.DescribeObject(target)}: no rule of {Source} allows it";
    }

    private void Refresh()
    {
        var now = _time.GetTimestamp();
        lock (_lock)
        {
            if (_time.GetElapsedTime(_lastLook, now) < TimeSpan.FromSeconds(1))
            {
                return;
            }
            _lastLook = now;
            DateTime stamp;
            try
            {
                stamp = File.GetLastWriteTimeUtc(_path!);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                ReloadFailed?.Invoke($"{_path}: {e.Message}; keeping the previous ACLs");
                return;
            }
            if (stamp == _stamp)
            {
                return;
            }
            _stamp = stamp;
            try
            {
                _policy = AclPolicyFile.Load(_path!);
                Reloaded?.Invoke(_path!);
            }
            catch (AclFileException e)
            {
                ReloadFailed?.Invoke(e.Message + Environment.NewLine + "keeping the previous ACLs until the file is fixed");
            }
        }
    }
}
