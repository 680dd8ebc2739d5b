using System.CommandLine;
using System.Globalization;
using Sched.V1;
using Scheduler.FrameworkSdk;
using Grpc.Core;
using TaskStatus = Sched.V1.TaskStatus;

namespace Scheduler.Cli.Commands;

/// <summary>
/// <c>schedctl run [--cpus C] [--mem MiB] … -- CMD ARGS…</c>: launches one task through a
/// built-in framework, prints its states on stderr and its stdout on stdout, and exits with the
/// task's exit code.
/// </summary>
public static class RunCommand
{
    private static readonly Option<double> Cpus = new("--cpus") { Description = "Cores for the task (default 0.1).", DefaultValueFactory = _ => 0.1 };
    private static readonly Option<double> Mem = new("--mem") { Description = "Memory in MiB (default 64).", DefaultValueFactory = _ => 64 };
    private static readonly Option<double> Disk = new("--disk") { Description = "Disk in MiB (default 0).", DefaultValueFactory = _ => 0 };
    private static readonly Option<string> Role = new("--role") { Description = "Role to run under (default 'default').", DefaultValueFactory = _ => "default" };
    private static readonly Option<string?> Image = new("--image") { Description = "Run in an OCI container from this image (oci:DIR:TAG, oci-archive:FILE:TAG, NAME:TAG)." };
    private static readonly Option<string?> Name = new("--name") { Description = "Task name (and id prefix)." };
    private static readonly Option<double> Wait = new("--offer-wait") { Description = "Give up if no offer fits within this many seconds (default 30).", DefaultValueFactory = _ => 30 };
    private static readonly Argument<string[]> CommandLine = new("command") { Description = "The command and its arguments (after --). One argument runs through /bin/sh -c.", Arity = ArgumentArity.OneOrMore };

    public static Command Create()
    {
        var command = new Command("run", "Run one task on the cluster; stream its states and stdout; exit with its exit code.");
        foreach (var o in new Option[] { Cpus, Mem, Disk, Role, Image, Name, Wait })
        {
            command.Options.Add(o);
        }
        command.Arguments.Add(CommandLine);
        command.SetAction((p, ct) => RunAsync(p, ct));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken ct)
    {
        var argv = parse.GetValue(CommandLine) ?? [];
        var cpus = ResourceText.Quantity(parse.GetValue(Cpus), "--cpus", positive: true);
        var mem = ResourceText.Quantity(parse.GetValue(Mem), "--mem", positive: true);
        var disk = ResourceText.Quantity(parse.GetValue(Disk), "--disk", positive: false);
        var name = parse.GetValue(Name) ?? "run";
        var taskId = $"{name}-{Guid.NewGuid().ToString("N")[..8]}";
        var builder = new TaskBuilder(taskId).Name(name).Cpus(cpus).Mem(mem);
        if (disk > 0)
        {
            builder.Disk(disk);
        }
        if (argv.Length == 1)
        {
            builder.Shell(argv[0]);
        }
        else
        {
            builder.Argv(argv[0], argv[1..]);
        }
        if (parse.GetValue(Image) is { } image)
        {
            builder.Image(image);
        }

        var masters = GlobalOptions.Masters(parse);
        // The framework outlives this process for a while (disconnected) so that 'schedctl tasks --all'
        // can still show how the task ended; the master removes it after the failover timeout.
        var framework = new FrameworkInfo { Name = "schedctl-run", User = Environment.UserName, FailoverTimeoutSeconds = 300 };
        framework.Roles.Add(parse.GetValue(Role)!);
        framework.Capabilities.Add(FrameworkCapability.PartitionAware);
        var options = new SchedulerClientOptions
        {
            Masters = masters.ToList(),
            Framework = framework,
            CallTimeout = TimeSpan.FromSeconds(10),
            SubscribeTimeout = TimeSpan.FromSeconds(5),
        };
        var session = new RunSession(options, builder, taskId, Console.Error, TimeSpan.FromSeconds(parse.GetValue(Wait)));
        return await session.RunAsync(ct);
    }

    /// <summary>One run: subscribe, launch on the first fitting offer, follow to the end.</summary>
    private sealed class RunSession(SchedulerClientOptions options, TaskBuilder builder, string taskId, TextWriter log, TimeSpan offerWait)
    {
        private readonly CancellationTokenSource _tail = new();
        private Task<long>? _tailTask;
        private string? _agentAddress;
        private string? _frameworkId;
        private long _offset;

        public async Task<int> RunAsync(CancellationToken ct)
        {
            await using var client = new SchedulerClient(options);
            using var deadline = new CancellationTokenSource();
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, deadline.Token);
            deadline.CancelAfter(options.SubscribeTimeout * 2);
            var launched = false;
            var finished = false;
            try
            {
                await foreach (var e in client.ReadEventsAsync(linked.Token))
                {
                    switch (e.EventCase)
                    {
                        case Event.EventOneofCase.Subscribed:
                            _frameworkId = e.Subscribed.FrameworkId;
                            if (!launched)
                            {
                                deadline.CancelAfter(offerWait);
                            }
                            break;
                        case Event.EventOneofCase.Offers:
                            launched = await OnOffersAsync(client, e.Offers.Offers_, launched, linked.Token);
                            if (launched)
                            {
                                deadline.CancelAfter(Timeout.InfiniteTimeSpan);
                            }
                            break;
                        case Event.EventOneofCase.Update:
                            if (await OnUpdateAsync(client, e.Update.Status, linked.Token) is { } code)
                            {
                                finished = true;
                                return code;
                            }
                            break;
                        case Event.EventOneofCase.Updates:
                            foreach (var status in e.Updates.Statuses)
                            {
                                if (await OnUpdateAsync(client, status, linked.Token) is { } exit)
                                {
                                    finished = true;
                                    return exit;
                                }
                            }
                            break;
                        case Event.EventOneofCase.Error:
                            throw new CliException(e.Error.Message);
                    }
                }
                throw new CliException(client.TerminationReason ?? "the connection to the master ended");
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                if (client.FrameworkId is null)
                {
                    throw new CliException(MasterConnection.Unreachable(options.Masters));
                }
                throw new CliException($"no offer could fit the task ({OfferWanted()}) within {offerWait.TotalSeconds:0} s; check 'schedctl agents' for free resources");
            }
            finally
            {
                await _tail.CancelAsync();
                if (_tailTask is not null)
                {
                    await _tailTask.ContinueWith(_ => { }, TaskScheduler.Default);
                }
                if (client.IsConnected && !finished)
                {
                    // Interrupted or failed: remove the framework, which kills the task.
                    try
                    {
                        await client.TeardownAsync(CancellationToken.None);
                    }
                    catch (Exception ex) when (ex is RpcException or SchedulerException)
                    {
                        await log.WriteLineAsync($"schedctl: could not remove the run framework: {ex.Message}");
                    }
                }
            }
        }

        private string OfferWanted() => string.Join(", ", builder.Build().Resources.Select(r => OfferResources.Describe([r])));

        private async Task<bool> OnOffersAsync(SchedulerClient client, IReadOnlyList<Offer> offers, bool launched, CancellationToken ct)
        {
            var decline = new List<string>();
            foreach (var offer in offers)
            {
                if (!launched && new OfferResources(offer).TryCarve(builder, out var task))
                {
                    _agentAddress = offer.AgentAddress;
                    await log.WriteLineAsync($"task {taskId}: launching on agent {offer.AgentId} ({offer.Hostname})");
                    await client.LaunchAsync(offer, [task], refuseSeconds: 60, ct);
                    await client.SuppressAsync(cancellationToken: ct);
                    launched = true;
                }
                else
                {
                    decline.Add(offer.Id);
                }
            }
            if (decline.Count > 0)
            {
                await client.DeclineAsync(decline, launched ? 60 : 1, ct);
            }
            return launched;
        }

        /// <summary>Handles an update of the task; returns the exit code once it is terminal.</summary>
        private async Task<int?> OnUpdateAsync(SchedulerClient client, TaskStatus status, CancellationToken ct)
        {
            if (status.TaskId != taskId)
            {
                return null;
            }
            var detail = Output.TaskDetail(status);
            await log.WriteLineAsync($"task {taskId}: {status.State.ShortName()}{(detail.Length > 0 ? " (" + detail + ")" : "")}");
            if (status.State is TaskState.TaskRunning or TaskState.TaskStarting && _tailTask is null && _agentAddress is { Length: > 0 } && _frameworkId is not null)
            {
                var path = SandboxFiles.PathOf(_frameworkId, taskId, "stdout");
                _tailTask = FollowStdoutAsync(path, _tail.Token);
            }
            if (!status.State.IsTerminal())
            {
                return null;
            }
            // Show everything the task wrote: stop following, then read what is left.
            await _tail.CancelAsync();
            if (_tailTask is not null)
            {
                _offset = await _tailTask;
            }
            if (_agentAddress is { Length: > 0 } && _frameworkId is not null && status.State is TaskState.TaskFinished or TaskState.TaskFailed or TaskState.TaskKilled)
            {
                try
                {
                    using var files = new SandboxFiles(_agentAddress);
                    using var stdout = Console.OpenStandardOutput();
                    await files.CopyToEndAsync(SandboxFiles.PathOf(_frameworkId, taskId, "stdout"), _offset, stdout, ct);
                }
                catch (RpcException e)
                {
                    await log.WriteLineAsync($"schedctl: could not read the task's stdout from {_agentAddress}: {e.Status.Detail}");
                }
            }
            if (status.NeedsAcknowledgement())
            {
                await client.AcknowledgeAsync(status, ct);
            }
            return status.State switch
            {
                TaskState.TaskFinished => status.HasExitCode ? status.ExitCode : 0,
                TaskState.TaskFailed => status.HasExitCode && status.ExitCode != 0 ? status.ExitCode : 1,
                TaskState.TaskKilled => status.HasExitCode && status.ExitCode != 0 ? status.ExitCode : 137,
                _ => 1,
            };
        }

        private async Task<long> FollowStdoutAsync(string path, CancellationToken ct)
        {
            using var files = new SandboxFiles(_agentAddress!);
            using var stdout = Console.OpenStandardOutput();
            long offset = 0;
            while (!ct.IsCancellationRequested)
            {
                try
                {
                    offset = await files.FollowAsync(path, offset, stdout, ct);
                    if (!ct.IsCancellationRequested)
                    {
                        await Task.Delay(200, ct);
                    }
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.NotFound && !ct.IsCancellationRequested)
                {
                    await Task.Delay(200, ct).ContinueWith(_ => { }, TaskScheduler.Default);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
                catch (RpcException)
                {
                    break;
                }
            }
            return offset;
        }

        public override string ToString() => taskId.ToString(CultureInfo.InvariantCulture);
    }
}
