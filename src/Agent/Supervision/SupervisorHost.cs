using System.Runtime.InteropServices;
using Scheduler.Agent.Native;

namespace Scheduler.Agent.Supervision;

/// <summary>
/// The per-task supervisor: the native program <c>sched-supervisor</c>
/// (<c>native/supervisor/sched-supervisor.c</c>, built by <c>src/Agent</c> next to its assembly),
/// one small process per task that starts the task in its cgroups, owns it, and records how it
/// ended in <c>DIR/status.json</c>. It runs in its own session so it outlives the agent (a
/// restarted agent re-adopts it by pid and start time).
/// <para>
/// Protocol with the agent: the agent writes <c>DIR/spec</c> (<see cref="SupervisorSpec.ToRecords"/>)
/// and starts <c>sched-supervisor --run-dir DIR</c>; the supervisor prints one line on stdout —
/// <c>started PID</c> or <c>failed MESSAGE</c> — then moves its stdout/stderr to
/// <c>DIR/supervisor.log</c>. A kill is a SIGTERM to the supervisor, optionally preceded by
/// <c>DIR/kill.request</c> holding the grace period in seconds: the task's process group gets
/// SIGTERM, and after the grace the whole container is killed.
/// </para>
/// </summary>
public static class SupervisorHost
{
    public const string ProgramName = "sched-supervisor";
    public const string SpecFile = "spec";
    public const string StatusFile = "status.json";
    public const string PidFile = "task.pid";
    public const string KillRequestFile = "kill.request";
    public const string LogFile = "supervisor.log";

    /// <summary>The native supervisor beside the agent's assembly.</summary>
    public static string ProgramPath => Path.Combine(AppContext.BaseDirectory, ProgramName);

    /// <summary>
    /// <c>schedctl agent supervise --run-dir DIR</c>: replaces this process with the native
    /// supervisor (same arguments), so there is one implementation of supervision.
    /// </summary>
    /// <returns>Only on failure: 2 on bad arguments, 1 when the supervisor cannot be executed.</returns>
    /// <param name="output">Where the failure line goes (the task's launcher reads it).</param>
    /// <param name="error">Where the usage goes.</param>
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var i = Array.IndexOf(args, "--run-dir");
        if (i < 0 || i + 1 >= args.Length)
        {
            await error.WriteLineAsync("usage: agent supervise --run-dir DIR");
            return 2;
        }
        var program = ProgramPath;
        var errno = Libc.Exec(program, [program, "--run-dir", args[i + 1]]);
        var why = $"failed cannot execute the task supervisor {program}: {Marshal.GetPInvokeErrorMessage(errno)}; reinstall the agent (the supervisor is built with it)";
        await output.WriteLineAsync(why);
        await output.FlushAsync();
        return 1;
    }
}
