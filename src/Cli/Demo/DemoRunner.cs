using System.Diagnostics;
using System.Globalization;
using Sched.V1;
using Scheduler.Cli.Cluster;
using Scheduler.FrameworkSdk;
using Scheduler.Protocol;
using Grpc.Core;
using Scheduler.Samples.Batch;
using Scheduler.Samples.Service;
using Spectre.Console;

namespace Scheduler.Cli.Demo;

/// <summary>Settings of <c>schedctl demo</c>.</summary>
public sealed record DemoSettings(int Agents = 3, int BatchTasks = 60, int ServiceInstances = 3, TimeSpan? Timeout = null)
{
    public const string AgentResources = "cpus:4;mem:4096;disk:4096;ports:[31000-31099]";
}

/// <summary>
/// The demo: a local master and agents (separate processes), a batch framework (role
/// <c>batch</c>) and a service framework (role <c>service</c>) sharing them under DRF, one
/// service instance killed and replaced, a summary, and a clean stop.
/// </summary>
public sealed class DemoRunner(DemoSettings settings, TextWriter output, bool interactive)
{
    private readonly DemoView _view = new(output, interactive);
    private readonly List<string> _events = [];
    private readonly Dictionary<string, double> _peakShare = new(StringComparer.Ordinal);
    private readonly Stopwatch _clock = new();

    public async Task<int> RunAsync(CancellationToken ct)
    {
        _clock.Start();
        var timeout = settings.Timeout ?? TimeSpan.FromSeconds(55);
        using var overall = CancellationTokenSource.CreateLinkedTokenSource(ct);
        overall.CancelAfter(timeout);
        _view.Step($"Starting 1 master and {settings.Agents} agents ({DemoSettings.AgentResources.Split(";ports")[0]} each) as separate processes on loopback…");
        LocalCluster? cluster = null;
        SchedulerDriver? batchDriver = null;
        SchedulerDriver? serviceDriver = null;
        var exit = 0;
        try
        {
            cluster = await LocalCluster.StartAsync(new LocalClusterOptions
            {
                Masters = 1,
                Agents = settings.Agents,
                AgentResources = DemoSettings.AgentResources,
                MasterArgs = ["--framework-heartbeat-interval", "1", "--allocation-interval", "0.05"],
                StartTimeout = TimeSpan.FromSeconds(30),
            }, overall.Token);
            _view.Step($"Master on {cluster.MasterList}; agents {string.Join(", ", cluster.AgentInfo.Select(a => a.Address))}; work dir {cluster.WorkDir}");
            if (cluster.Credentials is { } credentials)
            {
                _view.Step($"Secure: TLS on every endpoint (throwaway CA {credentials.CaFile}), tokens and ACLs; the demo acts as the operator 'admin'");
            }

            var batch = new BatchScheduler(new BatchJob { Name = "batch", Count = settings.BatchTasks, Command = "echo batch task {i}; sleep 0.5", Cpus = 0.5, Mem = 64 });
            var service = new ServiceScheduler(new ServiceSpec { Name = "web", Instances = settings.ServiceInstances, Command = "echo web instance {i} up; exec sleep 600", Cpus = 1, Mem = 256, KillGrace = TimeSpan.FromSeconds(1) });
            batchDriver = new SchedulerDriver(batch, ClientOptions(cluster, "demo-batch", "batch"));
            serviceDriver = new SchedulerDriver(service, ClientOptions(cluster, "demo-service", "service"));
            var runs = new[] { batchDriver.RunAsync(overall.Token), serviceDriver.RunAsync(overall.Token) };
            _view.Step($"Frameworks: 'demo-batch' (role batch: {settings.BatchTasks} × 'sleep 0.5', 0.5 cpu each) and 'demo-service' (role service: {settings.ServiceInstances} long-running instances, 1 cpu each)");

            using var connection = new MasterConnection(cluster.MasterAddresses, TimeSpan.FromSeconds(3), cluster.AdminChannel());
            var watch = new Watch(batch, service, serviceDriver, runs);
            if (_view.Interactive)
            {
                await _view.Console.Live(_view.Render(await SnapshotAsync(connection, watch, overall.Token)))
                    .AutoClear(false)
                    .StartAsync(async live =>
                    {
                        while (!await StepAsync(connection, watch, overall.Token))
                        {
                            live.UpdateTarget(_view.Render(await SnapshotAsync(connection, watch, overall.Token)));
                            await Task.Delay(250, overall.Token);
                        }
                        live.UpdateTarget(_view.Render(await SnapshotAsync(connection, watch, overall.Token)));
                    });
            }
            else
            {
                while (!await StepAsync(connection, watch, overall.Token))
                {
                    _view.WritePlain(await SnapshotAsync(connection, watch, overall.Token));
                    await Task.Delay(250, overall.Token);
                }
                _view.WritePlain(await SnapshotAsync(connection, watch, overall.Token));
            }

            var result = await batch.Completion;
            PrintSummary(result, service.Progress, watch);
            if (result.Failed > 0)
            {
                exit = Fail($"{result.Failed} batch task(s) failed; last: {batch.LastFailure}", cluster);
            }

            _view.Step("Tearing down both frameworks (their tasks are killed)…");
            await batchDriver.Client.TeardownAsync(overall.Token);
            await serviceDriver.Client.TeardownAsync(overall.Token);
            await WaitForNoTasksAsync(connection, overall.Token);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            exit = Fail($"the demo did not finish within {timeout.TotalSeconds:0} s", cluster);
        }
        catch (OperationCanceledException)
        {
            exit = Fail("interrupted", cluster);
        }
        catch (Exception e) when (e is CliException or SchedulerException or RpcException or InvalidOperationException)
        {
            exit = Fail(e.Message, cluster);
        }
        catch (Exception e)
        {
            // An unexpected failure names its root cause too (a type initializer's, for one), with where it was thrown.
            var root = e.GetBaseException();
            exit = Fail(root == e ? $"{e.GetType().Name}: {e.Message}" : $"{e.GetType().Name}: {e.Message} — caused by {root.GetType().Name}: {root.Message}\n{root.StackTrace}", cluster);
        }
        finally
        {
            if (batchDriver is not null)
            {
                await batchDriver.DisposeAsync();
            }
            if (serviceDriver is not null)
            {
                await serviceDriver.DisposeAsync();
            }
            if (cluster is not null)
            {
                _view.Step("Stopping agents and master…");
                await cluster.DisposeAsync();
            }
        }
        var cleaned = cluster is null || !Directory.Exists(cluster.WorkDir);
        _view.Step($"{(exit == 0 ? "Done" : "Stopped")} in {_clock.Elapsed.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s; {(cleaned ? "no processes or files left behind." : "could not remove " + cluster!.WorkDir)}");
        if (exit == 0)
        {
            _view.Step("Next: 'schedctl dev up' for a cluster that stays up, then 'schedctl run -- echo hello'.");
        }
        return exit;
    }

    private static SchedulerClientOptions ClientOptions(LocalCluster cluster, string name, string role) => new()
    {
        Masters = cluster.MasterAddresses,
        Framework = new FrameworkInfo { Name = name, Roles = { role }, FailoverTimeoutSeconds = 10, Capabilities = { FrameworkCapability.PartitionAware } },
        CallTimeout = TimeSpan.FromSeconds(5),
        Channel = cluster.AdminChannel(),
    };

    /// <summary>Advances the script (kill an instance once the batch is under way); true when done.</summary>
    private async Task<bool> StepAsync(MasterConnection connection, Watch w, CancellationToken ct)
    {
        foreach (var run in w.Runs.Where(r => r.IsCompleted))
        {
            await run;
            throw new CliException("a demo framework stopped unexpectedly: " + (w.ServiceDriver.Client.TerminationReason ?? "its driver ended"));
        }
        var batch = w.Batch.Progress;
        var service = w.Service.Progress;
        if (w.KilledAt is null && service.Healthy && (batch.Finished >= batch.Total / 3 || batch.Done))
        {
            w.RestartsBefore = service.Restarts;
            var victim = await w.Service.KillOneAsync(w.ServiceDriver.Client, ct);
            w.KilledAt = _clock.Elapsed;
            Event($"killed service instance {victim} (framework Kill); the service framework will replace it");
        }
        if (w.KilledAt is { } killed && w.ReplacedAt is null && service.Restarts > w.RestartsBefore && service.Healthy)
        {
            w.ReplacedAt = _clock.Elapsed;
            Event($"replacement instance running {(w.ReplacedAt.Value - killed).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture)} s after the kill");
        }
        if (batch.Done && !w.BatchReported)
        {
            w.BatchReported = true;
            w.BatchDoneAt = _clock.Elapsed;
            Event($"batch done: {batch.Finished} finished, {batch.Failed} failed");
        }
        _ = connection;
        return batch.Done && w.ReplacedAt is not null;
    }

    private async Task<DemoSnapshot> SnapshotAsync(MasterConnection connection, Watch w, CancellationToken ct)
    {
        var roles = new List<RoleLine>();
        try
        {
            var response = await connection.CallAsync(OperatorMethods.GetRoles, new GetRolesRequest(), ct);
            foreach (var r in response.Roles.Where(r => r.Name is "batch" or "service").OrderBy(r => r.Name, StringComparer.Ordinal))
            {
                roles.Add(new RoleLine(r.Name, r.DominantShare, (int)r.RunningTasks, Output.Resources(r.Allocated)));
                _peakShare[r.Name] = Math.Max(_peakShare.GetValueOrDefault(r.Name), r.DominantShare);
            }
        }
        catch (CliException e)
        {
            Event("could not read roles: " + e.Message);
        }
        lock (_events)
        {
            return new DemoSnapshot(_clock.Elapsed, roles, w.Batch.Progress, w.Service.Progress, _events.ToList());
        }
    }

    private void PrintSummary(BatchProgress batch, ServiceProgress service, Watch w)
    {
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]summary[/]");
        table.AddColumn("framework (role)");
        table.AddColumn("result");
        table.AddColumn("peak dominant share");
        table.AddRow("demo-batch (batch)", $"{batch.Finished}/{batch.Total} tasks finished, {batch.Failed} failed, {batch.Retries} retried, in {Seconds(w.BatchDoneAt)}",
            Output.Percent(_peakShare.GetValueOrDefault("batch")));
        table.AddRow("demo-service (service)", $"{service.Running}/{service.Desired} instances running; 1 killed, replaced in {Seconds(w.ReplacedAt - w.KilledAt)}",
            Output.Percent(_peakShare.GetValueOrDefault("service")));
        if (_view.Interactive)
        {
            _view.Console.Write(table);
        }
        else
        {
            output.WriteLine("summary:");
            output.WriteLine($"  demo-batch (batch):     {batch.Finished}/{batch.Total} tasks finished, {batch.Failed} failed, {batch.Retries} retried, in {Seconds(w.BatchDoneAt)}; peak dominant share {Output.Percent(_peakShare.GetValueOrDefault("batch"))}");
            output.WriteLine($"  demo-service (service): {service.Running}/{service.Desired} instances running; 1 killed, replaced in {Seconds(w.ReplacedAt - w.KilledAt)}; peak dominant share {Output.Percent(_peakShare.GetValueOrDefault("service"))}");
        }
    }

    private static async Task WaitForNoTasksAsync(MasterConnection connection, CancellationToken ct)
    {
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            while ((await Pages.AllAsync(new GetTasksRequest(), r => connection.CallAsync(OperatorMethods.GetTasks, r, limit.Token))).Tasks.Count > 0)
            {
                await Task.Delay(200, limit.Token);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            // The cluster stop below kills whatever is left.
        }
    }

    private int Fail(string message, LocalCluster? cluster)
    {
        output.WriteLine();
        output.WriteLine($"demo failed: {message}");
        if (cluster?.RecentOutput() is { Length: > 0 } logs)
        {
            output.WriteLine(logs);
        }
        return CliException.Failure;
    }

    private void Event(string text)
    {
        lock (_events)
        {
            _events.Add(text);
        }
    }

    private static string Seconds(TimeSpan? t) => t is { } v ? v.TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s" : "-";

    private sealed class Watch(BatchScheduler batch, ServiceScheduler service, SchedulerDriver serviceDriver, Task[] runs)
    {
        public BatchScheduler Batch => batch;

        public ServiceScheduler Service => service;

        public SchedulerDriver ServiceDriver => serviceDriver;

        public Task[] Runs => runs;

        public TimeSpan? KilledAt { get; set; }

        public TimeSpan? ReplacedAt { get; set; }

        public TimeSpan? BatchDoneAt { get; set; }

        public int RestartsBefore { get; set; }

        public bool BatchReported { get; set; }
    }
}
