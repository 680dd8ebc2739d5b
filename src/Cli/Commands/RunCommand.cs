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
            Channel = GlobalOptions.ChannelSettings(parse),
            Framework = framework,
            Token = GlobalOptions.Token(parse),
            CallTimeout = TimeSpan.FromSeconds(10),
            SubscribeTimeout = TimeSpan.FromSeconds(5),
        };
        var json = parse.GetValue(GlobalOptions.Json);
        var session = new RunSession(options, builder, taskId, Console.Error, TimeSpan.FromSeconds(parse.GetValue(Wait)), json ? new MemoryStream() : null);
        var code = await session.RunAsync(ct);
        if (json)
        {
            await parse.InvocationConfiguration.Output.WriteLineAsync(session.Summary(code));
        }
        return code;
    }

    /// <summary>One run: subscribe, launch on the first fitting offer, follow to the end. With
    /// <paramref name="capture"/> (--json) the task's stdout is kept for the summary instead of printed.</summary>
    private sealed class RunSession(SchedulerClientOptions options, TaskBuilder builder, string taskId, TextWriter log, TimeSpan offerWait, MemoryStream? capture)
    {
        /// <summary>How long without a fitting offer before a progress line says so.</summary>
        private static readonly TimeSpan WaitingNotice = TimeSpan.FromSeconds(3);

        private readonly CancellationTokenSource _tail = new();
        private TaskStatus? _final;
        private string? _agentId;
        private string? _bestOffer;
        private bool _waitingShown;
        private DateTimeOffset _subscribedAt;
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
                            _subscribedAt = DateTimeOffset.UtcNow;
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
                        case Event.EventOneofCase.Heartbeat when !launched:
                            await NoticeWaitingAsync();
                            break;
                    }
                }
                throw new CliException(client.TerminationReason ?? "the connection to the master ended");
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                if (client.FrameworkId is null)
                {
                    throw new CliException(await MasterConnection.UnreachableAsync([.. options.Masters], options.Channel?.Tls is not null, null));
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

        /// <summary>Says once, after a few seconds without a fitting offer, what the task waits for.</summary>
        private async Task NoticeWaitingAsync()
        {
            if (_waitingShown || DateTimeOffset.UtcNow - _subscribedAt < WaitingNotice)
            {
                return;
            }
            _waitingShown = true;
            var seen = _bestOffer is null ? "no agent has offered free resources yet" : "the last offer that did not fit: " + _bestOffer;
            await log.WriteLineAsync($"task {taskId}: waiting for an offer that fits {OfferWanted()} (up to {offerWait.TotalSeconds:0} s, --offer-wait); {seen}");
        }

        /// <summary>The --json result: the task's final status and what it wrote to stdout.</summary>
        public string Summary(int exitCode)
        {
            var result = new System.Text.Json.Nodes.JsonObject
            {
                ["task_id"] = taskId,
                ["framework_id"] = _frameworkId,
                ["agent_id"] = _agentId,
                ["exit_code"] = exitCode,
                ["status"] = _final is null ? null : System.Text.Json.Nodes.JsonNode.Parse(Google.Protobuf.JsonFormatter.Default.Format(_final)),
                ["stdout"] = capture is null ? null : System.Text.Encoding.UTF8.GetString(capture.GetBuffer(), 0, (int)capture.Length),
            };
            return result.ToJsonString();
        }

        private Stream OpenStdout() => capture ?? Console.OpenStandardOutput();

        private void CloseStdout(Stream stream)
        {
            if (!ReferenceEquals(stream, capture))
            {
                stream.Dispose();
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
                    _agentId = offer.AgentId;
                    await log.WriteLineAsync($"task {taskId}: launching on agent {offer.AgentId} ({offer.Hostname})");
                    await client.LaunchAsync(offer, [task], refuseSeconds: 60, ct);
                    await client.SuppressAsync(cancellationToken: ct);
                    launched = true;
                }
                else
                {
                    if (!launched)
                    {
                        _bestOffer = $"{OfferResources.Describe(offer.Resources)} on agent {offer.AgentId}";
                    }
                    decline.Add(offer.Id);
                }
            }
            if (!launched)
            {
                await NoticeWaitingAsync();
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
            _final = status;
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
                    using var files = new SandboxFiles(_agentAddress, options.Channel);
                    var stdout = OpenStdout();
                    try
                    {
                        await files.CopyToEndAsync(SandboxFiles.PathOf(_frameworkId, taskId, "stdout"), _offset, stdout, ct);
                    }
                    finally
                    {
                        CloseStdout(stdout);
                    }
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
            using var files = new SandboxFiles(_agentAddress!, options.Channel);
            var stdout = OpenStdout();
            try
            {
                return await FollowAsync(files, path, stdout, ct);
            }
            finally
            {
                CloseStdout(stdout);
            }
        }

        private static async Task<long> FollowAsync(SandboxFiles files, string path, Stream stdout, CancellationToken ct)
        {
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
