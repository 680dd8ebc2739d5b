namespace Scheduler.Protocol.Resources;

/// <summary>
/// Hierarchical role names (<c>eng/web</c>): segments separated by '/'. A resource reserved for a
/// role is usable by that role and its sub-roles; a parent's quota covers its whole subtree.
/// </summary>
public static class RoleName
{
    /// <summary>The role of unreserved resources in Mesos syntax (<c>cpus(*):2</c>).</summary>
    public const string Any = "*";

    /// <summary>Returns null when <paramref name="role"/> is a valid role name, else why not.</summary>
    public static string? Validate(string? role)
    {
        if (string.IsNullOrEmpty(role))
        {
            return "a role name must not be empty";
        }

        if (role == Any)
        {
            return "'*' is not a role; it means unreserved";
        }

        if (role[0] == '/' || role[^1] == '/')
        {
            return $"role '{role}' must not start or end with '/'";
        }

        var start = 0;
        while (start <= role.Length)
        {
            var end = role.IndexOf('/', start);
            if (end < 0)
            {
                end = role.Length;
            }

            var segment = role.AsSpan(start, end - start);
            if (segment.Length == 0)
            {
                return $"role '{role}' has an empty segment ('//')";
            }

            if (segment is "." or "..")
            {
                return $"role '{role}' must not have '.' or '..' segments";
            }

            if (segment[0] == '-')
            {
                return $"role '{role}' has a segment starting with '-'";
            }

            foreach (var c in segment)
            {
                if (char.IsWhiteSpace(c) || char.IsControl(c) || c is '(' or ')' or ':' or ';' or ',' or '[' or ']' or '{' or '}' or '*')
                {
                    return $"role '{role}' contains the character '{c}'; use letters, digits, '-', '_', '.' and '/' between segments";
                }
            }

            start = end + 1;
        }

        return null;
    }

    /// <summary>The parent role (<c>eng</c> for <c>eng/web</c>), or null for a top-level role.</summary>
    public static string? Parent(string role)
    {
        var i = role.LastIndexOf('/');
        return i <= 0 ? null : role[..i];
    }

    /// <summary>Whether <paramref name="role"/> is <paramref name="ancestor"/> or one of its sub-roles.</summary>
    public static bool IsSelfOrDescendant(string role, string ancestor) =>
        role.Length == ancestor.Length
            ? string.Equals(role, ancestor, StringComparison.Ordinal)
            : role.Length > ancestor.Length && role[ancestor.Length] == '/' && role.StartsWith(ancestor, StringComparison.Ordinal);

    /// <summary>The role and its ancestors, nearest first (<c>a/b/c</c>, <c>a/b</c>, <c>a</c>).</summary>
    public static IEnumerable<string> SelfAndAncestors(string role)
    {
        for (string? r = role; r is not null; r = Parent(r))
        {
            yield return r;
        }
    }
}
