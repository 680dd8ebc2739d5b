namespace Scheduler.Master.Validation;

/// <summary>Role names: slash-separated segments (<c>eng/web</c>), no empty segment, no <c>.</c> or
/// <c>..</c> segment, no whitespace or control characters, not starting with <c>-</c>.</summary>
public static class RoleNames
{
    /// <summary>Null when valid, else what is wrong with the name.</summary>
    public static string? Validate(string? role)
    {
        if (string.IsNullOrEmpty(role))
        {
            return "role name is empty";
        }
        if (role == "*")
        {
            return null;
        }
        foreach (var c in role)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                return $"role '{role}' contains whitespace or control characters";
            }
            if (c is '\\' or '*')
            {
                return $"role '{role}' contains '{c}'";
            }
        }
        if (role.StartsWith('-'))
        {
            return $"role '{role}' starts with '-'";
        }
        foreach (var segment in role.Split('/'))
        {
            if (segment.Length == 0)
            {
                return $"role '{role}' has an empty path segment (leading, trailing or double '/')";
            }
            if (segment is "." or "..")
            {
                return $"role '{role}' has a '{segment}' path segment";
            }
        }
        return null;
    }
}
