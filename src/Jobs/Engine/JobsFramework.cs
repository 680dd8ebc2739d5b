using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Sched.V1;
using Scheduler.FrameworkSdk;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Jobs.Engine;

/// <summary>
/// The jobs framework's scheduler callbacks and its clock: offers go to
/// <see cref="JobsEngine.Place"/>, updates to <see cref="JobsEngine.Observe"/>, and a tick loop
/// advances backoffs, rollouts, cron runs and idle probes. Offers kept for a gang are held at
/// most <see cref="HoldFor"/>, then declined.
/// </summary>
public sealed class JobsFramework : IScheduler
{
    private static readonly TimeSpan HoldFor = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan QuotaViewEvery = TimeSpan.FromSeconds(2);
    private readonly JobsEngine _engine;
    private readonly FrameworkInfo _framework;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Dictionary<string, (Offer Offer, DateTimeOffset Since)> _held = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _io = new(1, 1);
    private readonly HashSet<string> _suppressed = new(StringComparer.Ordinal);
    private SchedulerClient? _client;
    private readonly Func<CancellationToken, Task<QuotaShortfall>>? _quotaView;
    private DateTimeOffset _lastProbe;
    private DateTimeOffset _lastQuotaView;

    /// <param name="quotaView">Reads the masters' quota view (roles and quotas); null: pending
    /// instances are not explained by quota limits.</param>
    public JobsFramework(JobsEngine engine, FrameworkInfo framework, TimeProvider time, ILogger logger, Func<CancellationToken, Task<QuotaShortfall>>? quotaView = null)
    {
        _engine = engine;
        _framework = framework;
        _time = time;
        _logger = logger;
        _quotaView = quotaView;
    }

    public async Task OnSubscribedAsync(SchedulerClient client, Event.Types.Subscribed subscribed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(subscribed);
        _client = client;
        _engine.SetFrameworkId(subscribed.FrameworkId);
        _held.Clear();
        var live = _engine.LiveTasks();
        JobsLog.Subscribed(_logger, subscribed.FrameworkId, live.Count);
        // Explicit reconciliation of the tasks we launched, then implicit: the master reports
        // every task of ours it knows, and tasks no instance owns are killed (Observe).
        if (live.Count > 0)
        {
            await client.ReconcileAsync(live, cancellationToken);
        }
        await client.ReconcileAsync(null, cancellationToken);
        _suppressed.Clear();
        await client.ReviveAsync(cancellationToken: cancellationToken);
    }

    public async Task OnOffersAsync(SchedulerClient client, IReadOnlyList<Offer> offers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(offers);
        var now = _time.GetUtcNow();
        foreach (var o in offers)
        {
            _held[o.Id] = (o, now);
        }
        var all = _held.Values.Select(h => h.Offer).ToList();
        var actions = _engine.Place(all);
        var byId = all.ToDictionary(o => o.Id, StringComparer.Ordinal);
        foreach (var (offerId, tasks) in actions.Launches)
        {
            _held.Remove(offerId);
            await client.LaunchAsync(byId[offerId], tasks, refuseSeconds: 1, cancellationToken);
        }
        var decline = new List<string>();
        foreach (var (id, (_, since)) in _held.ToList())
        {
            if (!actions.Hold.Contains(id) || now - since > HoldFor)
            {
                decline.Add(id);
                _held.Remove(id);
            }
        }
        if (decline.Count > 0)
        {
            await client.DeclineAsync(decline, refuseSeconds: actions.WantsOffers ? 0.5 : 5, cancellationToken);
        }
        await ApplyAsync(client, actions, cancellationToken);
    }

    public Task OnRescindAsync(SchedulerClient client, string offerId, CancellationToken cancellationToken)
    {
        _held.Remove(offerId);
        return Task.CompletedTask;
    }

    public Task OnUpdateAsync(SchedulerClient client, TaskStatus status, CancellationToken cancellationToken) =>
        ApplyAsync(client, _engine.Observe(status), cancellationToken);

    /// <summary>Advances the engine every <paramref name="interval"/> until cancelled.</summary>
    public async Task RunClockAsync(SchedulerClient client, TimeSpan interval, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        using var timer = new PeriodicTimer(interval, _time);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            if (client.StreamId is null)
            {
                continue;
            }
            try
            {
                await ApplyAsync(client, _engine.Tick(), cancellationToken);
                await UpdateRolesAsync(client, cancellationToken);
                if (_time.GetUtcNow() - _lastProbe >= TimeSpan.FromSeconds(1))
                {
                    _lastProbe = _time.GetUtcNow();
                    await ProbeIdleAsync(client, cancellationToken);
                }
                if (_quotaView is not null && _time.GetUtcNow() - _lastQuotaView >= QuotaViewEvery && _engine.HasPending())
                {
                    _lastQuotaView = _time.GetUtcNow();
                    await ReadQuotaViewAsync(cancellationToken);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                JobsLog.StepFailed(_logger, e);
            }
        }
    }

    /// <summary>Sends the kills and the revive or suppress an engine step asks for.</summary>
    public async Task ApplyAsync(SchedulerClient client, EngineActions actions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(actions);
        await _io.WaitAsync(cancellationToken);
        try
        {
            foreach (var (taskId, agentId, grace) in actions.Kills)
            {
                await client.KillAsync(taskId, agentId, grace, cancellationToken);
            }
            if (!actions.RolesKnown)
            {
                return;
            }
            // Roles with nothing to place are suppressed, so the allocator offers the agents to
            // the roles that wait (a declined agent would otherwise go back to the same role).
            var revive = actions.WantedRoles.Where(_suppressed.Contains).ToList();
            if (revive.Count > 0)
            {
                _suppressed.ExceptWith(revive);
                await client.ReviveAsync(revive, cancellationToken);
            }
            var suppress = _framework.Roles.Where(r => !actions.WantedRoles.Contains(r) && !_suppressed.Contains(r)).ToList();
            if (suppress.Count > 0 && _held.Count == 0)
            {
                _suppressed.UnionWith(suppress);
                await client.SuppressAsync(suppress, cancellationToken);
            }
        }
        finally
        {
            _io.Release();
        }
    }

    /// <summary>Installs the masters' quota view; a failed read (a master away, a principal not
    /// allowed to view roles) only leaves the reasons as the offers gave them.</summary>
    private async Task ReadQuotaViewAsync(CancellationToken cancellationToken)
    {
        try
        {
            _engine.SetQuotaView(await _quotaView!(cancellationToken));
        }
        catch (Grpc.Core.RpcException e)
        {
            JobsLog.QuotaViewFailed(_logger, e.Status.StatusCode.ToString(), e.Status.Detail);
        }
    }

    private async Task UpdateRolesAsync(SchedulerClient client, CancellationToken cancellationToken)
    {
        var roles = _engine.Roles();
        if (roles.All(_framework.Roles.Contains))
        {
            return;
        }
        foreach (var role in roles.Where(r => !_framework.Roles.Contains(r)))
        {
            _framework.Roles.Add(role);
        }
        await client.UpdateFrameworkAsync(_framework, _suppressed, cancellationToken);
    }

    private async Task ProbeIdleAsync(SchedulerClient client, CancellationToken cancellationToken)
    {
        foreach (var (job, instance, command, env) in _engine.IdleProbes())
        {
            var seconds = await RunProbeAsync(instance, command, env, cancellationToken);
            if (seconds is { } s)
            {
                await ApplyAsync(client, _engine.ReportIdle(job, instance, s), cancellationToken);
            }
        }
    }

    /// <summary>Runs an idle probe (<c>/bin/sh -c</c>, here, with the instance's HOST and PORTn);
    /// its output is the seconds the instance has been idle.</summary>
    private async Task<double?> RunProbeAsync(string instance, string command, Dictionary<string, string> env, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        foreach (var (k, v) in env)
        {
            start.Environment[k] = v;
        }
        using var process = Process.Start(start);
        if (process is null)
        {
            return null;
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            var output = await process.StandardOutput.ReadToEndAsync(timeout.Token);
            await process.WaitForExitAsync(timeout.Token);
            if (process.ExitCode == 0 && double.TryParse(output.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
            {
                return seconds;
            }
            JobsLog.ProbeFailed(_logger, instance, $"exit {process.ExitCode}, output '{output.Trim()}'");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            process.Kill(entireProcessTree: true);
            JobsLog.ProbeFailed(_logger, instance, "no answer within 5 s");
        }
        return null;
    }
}
