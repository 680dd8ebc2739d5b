// The smallest useful framework: launch N tasks that print hello, wait for them, leave.
//   dotnet run --project samples/HelloFramework -- [MASTER host:port] [COUNT]
using Sched.V1;
using Scheduler.FrameworkSdk;
using TaskStatus = Sched.V1.TaskStatus;

var master = args.Length > 0 ? args[0] : Environment.GetEnvironmentVariable("SCHED_MASTER") ?? "127.0.0.1:5050";
var count = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };

var hello = new HelloScheduler(count);
var options = new SchedulerClientOptions
{
    Masters = [master],
    Framework = new FrameworkInfo { Name = "hello", Roles = { "default" }, FailoverTimeoutSeconds = 60 },
};
await using var driver = new SchedulerDriver(hello, options);
var running = driver.RunAsync(stop.Token);

var finished = await Task.WhenAny(hello.Done, running);
if (finished == hello.Done)
{
    Console.WriteLine($"all {count} tasks finished; tearing down");
    await driver.Client.TeardownAsync();
}
return hello.Failed == 0 && hello.Done.IsCompleted ? 0 : 1;

/// <summary>Launches <c>count</c> one-line shell tasks on whatever offers come.</summary>
internal sealed class HelloScheduler(int count) : IScheduler
{
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _launched;
    private int _ended;

    public Task Done => _done.Task;

    public int Failed { get; private set; }

    public async Task OnOffersAsync(SchedulerClient client, IReadOnlyList<Offer> offers, CancellationToken ct)
    {
        foreach (var offer in offers)
        {
            // Carve as many tasks out of this offer as fit; decline the offer if none do.
            var left = new OfferResources(offer);
            var tasks = new List<TaskInfo>();
            while (_launched < count
                   && left.TryCarve(new TaskBuilder($"hello-{_launched}").Shell($"echo hello from task {_launched} on $(hostname)").Cpus(0.1).Mem(32), out var task))
            {
                tasks.Add(task);
                _launched++;
            }
            if (tasks.Count > 0)
            {
                await client.LaunchAsync(offer, tasks, cancellationToken: ct);
            }
            else
            {
                await client.DeclineAsync([offer.Id], refuseSeconds: 30, ct);
            }
        }
        if (_launched == count)
        {
            await client.SuppressAsync(cancellationToken: ct); // no more offers needed
        }
    }

    public Task OnUpdateAsync(SchedulerClient client, TaskStatus status, CancellationToken ct)
    {
        Console.WriteLine($"{status.TaskId}: {status.State.ShortName()} {status.Message}");
        if (status.State.IsTerminal())
        {
            Failed += status.State == TaskState.TaskFinished ? 0 : 1;
            if (++_ended == count)
            {
                _done.TrySetResult();
            }
        }
        return Task.CompletedTask;
    }

    public Task OnErrorAsync(SchedulerClient client, string message, CancellationToken ct)
    {
        Console.Error.WriteLine("framework error: " + message);
        _done.TrySetException(new InvalidOperationException(message));
        return Task.CompletedTask;
    }
}
