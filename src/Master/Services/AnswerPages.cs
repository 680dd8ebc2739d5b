using System.Globalization;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Sched.V1;
using Scheduler.Master.Loop;

namespace Scheduler.Master.Services;

/// <summary>
/// Cuts operator answers into pages within a size bound (the contract is on GetStateRequest in
/// operator.proto). The state of a large cluster — tens of thousands of agents with their
/// attributes, hundreds of thousands of tasks — is far beyond the 4 MiB every gRPC client accepts
/// by default; answered in one message, GetState fails on every call. An answer that fits is
/// returned as it is; a cut one lists its items ordered by a key, and a page token holds the
/// section and the last key given, so the next page starts after it whatever changed meanwhile.
/// </summary>
public static class AnswerPages
{
    /// <summary>Room kept in a page for the master info and the token.</summary>
    private const int Reserve = 2048;

    public static GetAgentsResponse Page(GetAgentsResponse whole, GetAgentsRequest request, int bound)
    {
        var limit = Limit(request, bound);
        if (request.PageToken.Length == 0 && whole.CalculateSize() <= limit)
        {
            return whole;
        }
        var cursor = Cursor.Parse(request.PageToken, 1);
        var page = new GetAgentsResponse();
        var budget = new Budget(limit - Reserve);
        page.NextPageToken = Take(0, whole.Agents, a => a.Info.Id, cursor, page.Agents, budget) ?? "";
        return page;
    }

    public static GetTasksResponse Page(GetTasksResponse whole, GetTasksRequest request, int bound)
    {
        var limit = Limit(request, bound);
        if (request.PageToken.Length == 0 && whole.CalculateSize() <= limit)
        {
            return whole;
        }
        var cursor = Cursor.Parse(request.PageToken, 1);
        var page = new GetTasksResponse();
        var budget = new Budget(limit - Reserve);
        // Live and completed tasks of one id may both be listed: the key tells them apart.
        page.NextPageToken = Take(0, whole.Tasks, t => (IsTerminal(t) ? "1\0" + CompletedKey(t) : "0\0" + TaskKey(t)), cursor, page.Tasks, budget) ?? "";
        return page;
    }

    public static GetStateResponse Page(GetStateResponse whole, GetStateRequest request, int bound)
    {
        var limit = Limit(request, bound);
        if (request.PageToken.Length == 0 && whole.CalculateSize() <= limit)
        {
            return whole;
        }
        var cursor = Cursor.Parse(request.PageToken, 5);
        var page = new GetStateResponse { Master = whole.Master };
        var budget = new Budget(limit - Reserve - page.CalculateSize());
        page.NextPageToken =
            Take(0, whole.Agents, a => a.Info.Id, cursor, page.Agents, budget)
            ?? Take(1, whole.Frameworks, f => f.Info.Id, cursor, page.Frameworks, budget)
            ?? Take(2, whole.Tasks, TaskKey, cursor, page.Tasks, budget)
            ?? Take(3, whole.CompletedTasks, CompletedKey, cursor, page.CompletedTasks, budget)
            ?? Take(4, whole.Roles, r => r.Name, cursor, page.Roles, budget)
            ?? "";
        return page;
    }

    private static int Limit(IPagedRequest request, int bound) => request.PageBytes > 0 ? (int)Math.Min(request.PageBytes, (uint)bound) : bound;

    private static bool IsTerminal(TaskRecord task) => Scheduler.Protocol.Tasks.TaskLifecycle.IsTerminal(task.State);

    private static string TaskKey(TaskRecord task) => task.FrameworkId + "\0" + task.TaskId;

    /// <summary>Completed tasks by framework, then by the time of their last status (most recent last).</summary>
    private static string CompletedKey(TaskRecord task) =>
        task.FrameworkId + "\0" + ((long)Math.Max(0, (task.Status?.Timestamp ?? 0) * 1e6)).ToString("D20", CultureInfo.InvariantCulture) + "\0" + task.TaskId;

    /// <summary>
    /// Adds the items of section <paramref name="section"/> after the cursor, in key order, while
    /// the budget lasts (and at least one per page, so every call makes progress). Returns the
    /// token of the next page when the budget ran out, null when the section is done.
    /// </summary>
    private static string? Take<T>(int section, RepeatedField<T> items, Func<T, string> key, Cursor cursor, RepeatedField<T> into, Budget budget)
        where T : IMessage
    {
        if (section < cursor.Section)
        {
            return null;
        }
        var after = section == cursor.Section ? cursor.After : null;
        var ordered = items.Select(i => (Key: key(i), Item: i))
            .Where(p => after is null || string.CompareOrdinal(p.Key, after) > 0)
            .OrderBy(p => p.Key, StringComparer.Ordinal);
        string? last = null;
        foreach (var (k, item) in ordered)
        {
            if (!budget.TryAdd(item))
            {
                return new Cursor(section, last).ToToken();
            }
            into.Add(item);
            last = k;
        }
        return null;
    }

    private sealed class Budget(int bytes)
    {
        private int _used;
        private bool _any;

        public bool TryAdd(IMessage item)
        {
            var size = item.CalculateSize();
            var framed = 1 + CodedOutputStream.ComputeLengthSize(size) + size;
            if (_any && _used + framed > bytes)
            {
                return false;
            }
            _used += framed;
            _any = true;
            return true;
        }
    }

    /// <summary>Where a page starts: the section, and the last key given in it (null: its start).</summary>
    private readonly record struct Cursor(int Section, string? After)
    {
        public string ToToken() => Convert.ToBase64String(Encoding.UTF8.GetBytes(Section.ToString(CultureInfo.InvariantCulture) + "\n" + (After is null ? "" : "=" + After)))
            .TrimEnd('=').Replace('+', '-').Replace('/', '_');

        public static Cursor Parse(string token, int sections)
        {
            if (token.Length == 0)
            {
                return new Cursor(0, null);
            }
            string text;
            try
            {
                var b64 = token.Replace('-', '+').Replace('_', '/');
                text = Encoding.UTF8.GetString(Convert.FromBase64String(b64.PadRight(b64.Length + (4 - b64.Length % 4) % 4, '=')));
            }
            catch (FormatException)
            {
                throw Bad(token);
            }
            var newline = text.IndexOf('\n', StringComparison.Ordinal);
            if (newline < 0 || !int.TryParse(text.AsSpan(0, newline), NumberStyles.None, CultureInfo.InvariantCulture, out var section) || section >= sections)
            {
                throw Bad(token);
            }
            var rest = text[(newline + 1)..];
            if (rest.Length > 0 && rest[0] != '=')
            {
                throw Bad(token);
            }
            return new Cursor(section, rest.Length == 0 ? null : rest[1..]);
        }

        private static Grpc.Core.RpcException Bad(string token) => MasterErrors.InvalidArgument(
            $"page_token '{token}' is not one this call returned as next_page_token; start again without a page_token");
    }
}
