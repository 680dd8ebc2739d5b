using Scheduler.Master.State;
using Grpc.Core;
using Xunit;

namespace Scheduler.Master.Tests.State;

/// <summary>The outbox of one stream: order, flush batching, close with and without a status,
/// cancellation, and sends from another thread while the drain waits.</summary>
public sealed class OutboxTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Drains_in_order_flushing_once_per_burst_then_ends_on_close()
    {
        var outbox = new Outbox<int>();
        var writer = new RecordingWriter();
        for (var i = 0; i < 100; i++)
        {
            Assert.True(outbox.Send(i));
        }
        var drain = outbox.DrainToAsync(writer, CancellationToken.None);
        await writer.WaitForAsync(100);
        Assert.Equal(Enumerable.Range(0, 100), writer.Messages);
        Assert.Equal(1, writer.Flushes);

        // Sends from another thread wake the waiting drain.
        await Task.Run(() => outbox.Send(100));
        await writer.WaitForAsync(101);
        outbox.Close();
        await drain.WaitAsync(Timeout);
        Assert.False(outbox.Send(101));
        Assert.Equal(0, outbox.Count);
    }

    [Fact]
    public async Task Close_with_a_status_delivers_what_was_queued_then_ends_with_that_status()
    {
        var outbox = new Outbox<int>();
        var writer = new RecordingWriter();
        outbox.Send(1);
        outbox.Send(2);
        outbox.Close(new RpcException(new Status(StatusCode.FailedPrecondition, "gone")));
        var e = await Assert.ThrowsAsync<RpcException>(() => outbox.DrainToAsync(writer, CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(StatusCode.FailedPrecondition, e.StatusCode);
        Assert.Equal([1, 2], writer.Messages);
    }

    [Fact]
    public async Task Cancelling_a_waiting_drain_ends_it_and_the_outbox_still_takes_a_new_drain()
    {
        var outbox = new Outbox<int>();
        using var cts = new CancellationTokenSource();
        var drain = outbox.DrainToAsync(new RecordingWriter(), cts.Token);
        Assert.False(drain.IsCompleted);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => drain.WaitAsync(Timeout));

        var writer = new RecordingWriter();
        var again = outbox.DrainToAsync(writer, CancellationToken.None);
        outbox.Send(7);
        await writer.WaitForAsync(1);
        outbox.Close();
        await again.WaitAsync(Timeout);
        Assert.Equal([7], writer.Messages);
    }

    [Fact]
    public void Peek_and_read_follow_the_queue_across_buffer_growth_and_release()
    {
        var outbox = new Outbox<int>();
        for (var round = 0; round < 3; round++)
        {
            for (var i = 0; i < 50; i++)
            {
                outbox.Send(i);
            }
            Assert.True(outbox.TryPeek(out var first));
            Assert.Equal(0, first);
            for (var i = 0; i < 50; i++)
            {
                Assert.True(outbox.TryRead(out var m));
                Assert.Equal(i, m);
            }
            Assert.False(outbox.TryRead(out _));
            Assert.False(outbox.TryPeek(out _));
        }
    }

    private sealed class RecordingWriter : IAsyncStreamWriter<int>
    {
        private readonly Lock _sync = new();
        private readonly List<int> _messages = [];
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Flushes { get; private set; }

        public List<int> Messages
        {
            get
            {
                lock (_sync)
                {
                    return [.. _messages];
                }
            }
        }

        /// <summary>As a server stream: a write with <see cref="WriteFlags.BufferHint"/> is queued, any other flushes.</summary>
        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(int message) => WriteAsync(message, CancellationToken.None);

        public Task WriteAsync(int message, CancellationToken cancellationToken)
        {
            var flush = ((WriteOptions?.Flags ?? default) & WriteFlags.BufferHint) == 0;
            TaskCompletionSource changed;
            lock (_sync)
            {
                _messages.Add(message);
                Flushes += flush ? 1 : 0;
                changed = _changed;
                _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }
            changed.TrySetResult();
            return Task.CompletedTask;
        }

        public async Task WaitForAsync(int count)
        {
            while (true)
            {
                Task changed;
                lock (_sync)
                {
                    if (_messages.Count >= count)
                    {
                        return;
                    }
                    changed = _changed.Task;
                }
                await changed.WaitAsync(Timeout);
            }
        }
    }
}
