using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Scheduler.Master.Registry;
using Scheduler.Master.Telemetry;

namespace Scheduler.Master.Loop;

/// <summary>
/// Commits registry writes in order, off the master loop's hot path: the loop enqueues and moves
/// on; callers that must know the write is durable (quota, weights) await the returned task.
/// Unavailable stores are retried with backoff; a fenced write ends the leadership term.
/// </summary>
public sealed class RegistryWriter : IAsyncDisposable
{
    private readonly IRegistryStore _store;
    private readonly ILogger _logger;
    private readonly Action _onFenced;
    private readonly CancellationTokenSource _stop;
    private readonly Channel<(IReadOnlyList<RegistryWrite> Writes, TaskCompletionSource Done)> _queue =
        Channel.CreateUnbounded<(IReadOnlyList<RegistryWrite>, TaskCompletionSource)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _worker;

    /// <param name="lost">Cancelled when the leadership ends: pending writes are abandoned.</param>
    public RegistryWriter(IRegistryStore store, ILogger logger, Action onFenced, CancellationToken lost)
    {
        _store = store;
        _logger = logger;
        _onFenced = onFenced;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(lost);
        _worker = Task.Run(RunAsync, CancellationToken.None);
    }

    /// <summary>Queues writes; the task completes once they are durable (faults when they never will be).</summary>
    public Task Enqueue(params RegistryWrite[] writes)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!_queue.Writer.TryWrite((writes, done)))
        {
            done.SetException(new RegistryFencedException("the master stopped leading; the write was not made"));
        }
        return done.Task;
    }

    /// <summary>Flushes the queued writes (a graceful stop keeps them), giving up after a few
    /// seconds or when the leadership is lost.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        _stop.CancelAfter(TimeSpan.FromSeconds(5));
        await _worker;
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        await foreach (var (writes, done) in _queue.Reader.ReadAllAsync(CancellationToken.None))
        {
            var delay = TimeSpan.FromMilliseconds(100);
            while (true)
            {
                if (_stop.IsCancellationRequested)
                {
                    done.TrySetException(new RegistryFencedException("the master stopped leading; the write was not made"));
                    break;
                }
                try
                {
                    await _store.CommitAsync(writes, _stop.Token);
                    done.TrySetResult();
                    break;
                }
                catch (RegistryUnavailableException e)
                {
                    MasterLog.RegistryWriteFailed(_logger, "registry unavailable, retrying", e);
                    try
                    {
                        await Task.Delay(delay, _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                    delay = TimeSpan.FromMilliseconds(Math.Min(delay.TotalMilliseconds * 2, 5000));
                }
                catch (RegistryFencedException e)
                {
                    MasterLog.RegistryWriteFailed(_logger, "fenced: another master leads", e);
                    done.TrySetException(e);
                    _queue.Writer.TryComplete();
                    _onFenced();
                    break;
                }
                catch (Exception e)
                {
                    MasterLog.RegistryWriteFailed(_logger, e.Message, e);
                    done.TrySetException(e);
                    break;
                }
            }
        }
    }
}
