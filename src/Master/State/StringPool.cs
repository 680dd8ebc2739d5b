namespace Scheduler.Master.State;

/// <summary>
/// A bounded intern table for short strings that repeat across tasks and arrive parsed, one copy
/// per message (the roles of the tasks an agent reports when it registers), which would otherwise
/// be kept for each task's lifetime. Strings longer than <see cref="MaxLength"/> are not
/// pooled; once full, the pool stops growing. Owned by the master loop (not thread-safe).
/// </summary>
public sealed class StringPool
{
    public const int MaxLength = 128;
    private const int Capacity = 8192;
    private readonly HashSet<string> _strings = new(StringComparer.Ordinal);

    public string Intern(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length == 0)
        {
            return "";
        }
        if (value.Length > MaxLength)
        {
            return value;
        }
        if (_strings.TryGetValue(value, out var shared))
        {
            return shared;
        }
        if (_strings.Count < Capacity)
        {
            _strings.Add(value);
        }
        return value;
    }
}
