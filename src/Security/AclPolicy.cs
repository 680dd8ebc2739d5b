namespace Scheduler.Security;

/// <summary>One grant: these principals may do these actions on these objects.</summary>
/// <param name="Principals">Principal names, <c>group:NAME</c>, or <c>*</c> (every authenticated principal).</param>
/// <param name="Objects">Object patterns: a name, <c>*</c>, a prefix ending in <c>*</c>; for roles
/// <c>eng</c> also covers <c>eng/…</c> and <c>eng/*</c> covers only the children.</param>
public sealed record AclRule(IReadOnlyList<string> Principals, IReadOnlyList<AclAction> Actions, IReadOnlyList<string> Objects);

/// <summary>
/// Who may do what. A call is allowed when its principal is a superuser, or a rule names the
/// principal (or one of its groups, or <c>*</c>), the action and a pattern covering the object;
/// otherwise <see cref="DefaultAllow"/> decides. Running tasks as root is never covered by
/// <c>*</c> or by the default: only a rule naming the user <c>root</c> allows it.
/// </summary>
public sealed class AclPolicy
{
    private readonly Dictionary<string, HashSet<string>> _groupsOf = new(StringComparer.Ordinal);

    public AclPolicy(IEnumerable<string> superusers, IReadOnlyDictionary<string, IReadOnlyList<string>> groups, IEnumerable<AclRule> rules, bool defaultAllow)
    {
        ArgumentNullException.ThrowIfNull(superusers);
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(rules);
        Superusers = new HashSet<string>(superusers, StringComparer.Ordinal);
        Groups = groups;
        Rules = [.. rules];
        DefaultAllow = defaultAllow;
        foreach (var (group, members) in groups)
        {
            foreach (var member in members)
            {
                if (!_groupsOf.TryGetValue(member, out var set))
                {
                    _groupsOf[member] = set = new HashSet<string>(StringComparer.Ordinal);
                }
                set.Add(group);
            }
        }
    }

    public IReadOnlySet<string> Superusers { get; }

    public IReadOnlyDictionary<string, IReadOnlyList<string>> Groups { get; }

    public IReadOnlyList<AclRule> Rules { get; }

    public bool DefaultAllow { get; }

    /// <summary>The policy of a master started without an ACL file: the principal <c>admin</c> is a
    /// superuser; the principal <c>agent</c> may register agents; every authenticated principal may
    /// register frameworks in any role, run tasks as any user but root, and see agents and roles.
    /// Each principal sees and acts on its own frameworks and tasks only.</summary>
    public static AclPolicy Default { get; } = new(
        ["admin"],
        new Dictionary<string, IReadOnlyList<string>>(),
        [
            new AclRule(["agent"], [AclAction.RegisterAgent, AclAction.ViewAgent], ["*"]),
            new AclRule(["*"], [AclAction.RegisterFramework, AclAction.RunTask, AclAction.ViewAgent, AclAction.ViewRole], ["*"]),
        ],
        defaultAllow: false);

    /// <summary>Everything allowed, root included: a master that allows anonymous calls.</summary>
    public static AclPolicy AllowAll { get; } = new(
        [],
        new Dictionary<string, IReadOnlyList<string>>(),
        [new AclRule(["*"], [AclAction.RunTask], ["root"])],
        defaultAllow: true);

    public bool IsSuperuser(Caller caller)
    {
        ArgumentNullException.ThrowIfNull(caller);
        return !caller.IsAnonymous && Superusers.Contains(caller.Principal);
    }

    /// <summary>The groups <paramref name="principal"/> belongs to.</summary>
    public IReadOnlySet<string> GroupsOf(string principal)
        => _groupsOf.TryGetValue(principal, out var set) ? set : (IReadOnlySet<string>)new HashSet<string>();

    public bool Allows(Caller caller, AclAction action, string target)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(target);
        var root = action == AclAction.RunTask && IsRoot(target);
        if (IsSuperuser(caller))
        {
            return true;
        }
        foreach (var rule in Rules)
        {
            if (rule.Actions.Contains(action) && NamesCaller(rule, caller) && rule.Objects.Any(o => Covers(action, o, target)))
            {
                return true;
            }
        }
        return DefaultAllow && !root;
    }

    private bool NamesCaller(AclRule rule, Caller caller)
    {
        foreach (var p in rule.Principals)
        {
            if (p == "*")
            {
                return true;
            }
            if (caller.IsAnonymous)
            {
                continue;
            }
            if (p.StartsWith("group:", StringComparison.Ordinal) ? GroupsOf(caller.Principal).Contains(p[6..]) : p == caller.Principal)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Whether the object pattern <paramref name="pattern"/> of a rule covers <paramref name="target"/>.</summary>
    public static bool Covers(AclAction action, string pattern, string target)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(target);
        if (action == AclAction.RunTask && IsRoot(target))
        {
            return pattern == "root";
        }
        if (pattern == "*")
        {
            return true;
        }
        if (action.KindOf() == ObjectKind.Role)
        {
            if (pattern.EndsWith("/*", StringComparison.Ordinal))
            {
                return target.StartsWith(pattern[..^1], StringComparison.Ordinal);
            }
            return target == pattern || target.StartsWith(pattern + "/", StringComparison.Ordinal);
        }
        if (pattern.EndsWith('*'))
        {
            return target.StartsWith(pattern[..^1], StringComparison.Ordinal);
        }
        return target == pattern;
    }

    /// <summary>Root by name or by id; an empty user is the agent's own user, root on most hosts,
    /// and is treated as root.</summary>
    public static bool IsRoot(string user) => user is "" or "root" or "0";
}
