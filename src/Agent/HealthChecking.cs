using System.Diagnostics;
using System.Net.Sockets;
using Sched.V1;

namespace Scheduler.Agent;

/// <summary>
/// Runs a task's health check (COMMAND, HTTP or TCP against 127.0.0.1) while it runs: after
/// <c>delay_seconds</c>, every <c>interval_seconds</c>, each attempt bounded by
/// <c>timeout_seconds</c>. Failures inside <c>grace_period_seconds</c> after start do not count
/// unless a check has passed. A change of health is reported as a TASK_RUNNING update with
/// <c>healthy</c>; <c>consecutive_failures</c> failures in a row kill the task, which then ends
/// TASK_FAILED with REASON_TASK_HEALTH_CHECK_FAILED.
/// </summary>
internal sealed class HealthChecking : IDisposable
{
    private static readonly HttpClient Http = new() { Timeout = Timeout.InfiniteTimeSpan };
    private readonly CancellationTokenSource _cts;

    private HealthChecking(CancellationToken cancellationToken) => _cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

    public static IDisposable? Start(AgentCore core, RunningTask task, CancellationToken cancellationToken)
    {
        if (task.Info.HealthCheck is not { Type: not HealthCheck.Types.Type.Unspecified } check)
        {
            return null;
        }
        var checking = new HealthChecking(cancellationToken);
        _ = Task.Run(() => checking.RunAsync(core, task, check, checking._cts.Token), CancellationToken.None);
        return checking;
    }

    public void Dispose()
    {
        _cts.Cancel();
        _cts.Dispose();
    }

    private async Task RunAsync(AgentCore core, RunningTask task, HealthCheck check, CancellationToken ct)
    {
        try
        {
            var started = Stopwatch.StartNew();
            var interval = TimeSpan.FromSeconds(check.IntervalSeconds > 0 ? check.IntervalSeconds : 10);
            var timeout = TimeSpan.FromSeconds(check.TimeoutSeconds > 0 ? check.TimeoutSeconds : 20);
            var grace = TimeSpan.FromSeconds(check.GracePeriodSeconds);
            var maxFailures = check.ConsecutiveFailures > 0 ? check.ConsecutiveFailures : 3;
            var failures = 0u;
            var passedOnce = false;
            await Task.Delay(TimeSpan.FromSeconds(check.DelaySeconds), ct);
            while (!ct.IsCancellationRequested && !task.Ended)
            {
                var ok = await CheckOnceAsync(check, task, timeout, ct);
                if (ok)
                {
                    failures = 0;
                    passedOnce = true;
                }
                else if (passedOnce || started.Elapsed >= grace)
                {
                    failures++;
                }
                if ((ok || passedOnce || started.Elapsed >= grace) && task.Healthy != ok && !task.Ended)
                {
                    task.Healthy = ok;
                    core.Enqueue(task.Framework.Id, task.Info.TaskId, TaskState.TaskRunning, TaskStatus.Types.Reason.Unspecified,
                        ok ? "the task is healthy" : "the task's health check failed", healthy: ok);
                }
                if (failures >= maxFailures)
                {
                    await core.KillAsync(task.Framework.Id, task.Info.TaskId, task.Info.KillPolicy, TaskStatus.Types.Reason.TaskHealthCheckFailed);
                    return;
                }
                await Task.Delay(interval, ct);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static async Task<bool> CheckOnceAsync(HealthCheck check, RunningTask task, TimeSpan timeout, CancellationToken ct)
    {
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
        attempt.CancelAfter(timeout);
        try
        {
            switch (check.Type)
            {
                case HealthCheck.Types.Type.Tcp:
                    using (var client = new TcpClient())
                    {
                        await client.ConnectAsync("127.0.0.1", (int)check.Tcp.Port, attempt.Token);
                        return true;
                    }
                case HealthCheck.Types.Type.Http:
                    var scheme = string.IsNullOrEmpty(check.Http.Scheme) ? "http" : check.Http.Scheme;
                    var path = string.IsNullOrEmpty(check.Http.Path) ? "/" : check.Http.Path;
                    using (var response = await Http.GetAsync($"{scheme}://127.0.0.1:{check.Http.Port}{path}", attempt.Token))
                    {
                        var code = (uint)response.StatusCode;
                        return check.Http.Statuses.Count > 0 ? check.Http.Statuses.Contains(code) : code is >= 200 and < 400;
                    }
                case HealthCheck.Types.Type.Command:
                    var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, WorkingDirectory = task.Handle?.SandboxDir ?? "/" };
                    psi.ArgumentList.Add("-c");
                    psi.ArgumentList.Add(check.Command?.Value ?? "false");
                    foreach (var kv in check.Command?.Env ?? [])
                    {
                        psi.Environment[kv.Key] = kv.Value;
                    }
                    using (var p = Process.Start(psi)!)
                    {
                        try
                        {
                            await p.WaitForExitAsync(attempt.Token);
                        }
                        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                        {
                            p.Kill(entireProcessTree: true);
                            return false;
                        }
                        return p.ExitCode == 0;
                    }
                default:
                    return true;
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception e) when (e is SocketException or HttpRequestException or IOException)
        {
            return false;
        }
    }
}
