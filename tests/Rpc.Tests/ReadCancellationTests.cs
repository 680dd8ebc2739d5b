using System.IO.Pipelines;
using Scheduler.Rpc.Internal;

namespace Scheduler.Rpc.Tests;

/// <summary>The callback that ends a pending request read when a call is cancelled runs inside
/// whoever cancels (a server stop cancels every call at once), so it must not throw when the
/// client has already reset the stream.</summary>
public sealed class ReadCancellationTests
{
    [Fact]
    public void Cancelling_the_read_of_a_reset_stream_does_not_throw()
    {
        var reset = new ThrowingReader(new IOException("The client reset the request stream."));
        HttpServerCallContext.CancelPendingRead(reset);
        Assert.Equal(1, reset.Calls);
        var completed = new ThrowingReader(new InvalidOperationException("Reading is not allowed after the reader was completed."));
        HttpServerCallContext.CancelPendingRead(completed);
        Assert.Equal(1, completed.Calls);
    }

    [Fact]
    public async Task Cancelling_the_read_of_a_live_stream_ends_the_pending_read()
    {
        var pipe = new Pipe();
        var pending = pipe.Reader.ReadAsync().AsTask();
        HttpServerCallContext.CancelPendingRead(pipe.Reader);
        var result = await pending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(result.IsCanceled);
    }

    [Fact]
    public async Task Cancelling_a_call_whose_stream_was_reset_does_not_fail_the_canceller()
    {
        // The registration the call makes, on a stream the client has reset: cancelling (as a
        // server stop does) neither throws nor skips the other callbacks.
        using var cts = new CancellationTokenSource();
        var ran = 0;
        using var a = cts.Token.UnsafeRegister(_ => Interlocked.Increment(ref ran), null);
        using var b = cts.Token.UnsafeRegister(static s => HttpServerCallContext.CancelPendingRead((PipeReader)s!), new ThrowingReader(new IOException("reset")));
        await cts.CancelAsync();
        Assert.Equal(1, ran);
    }

    private sealed class ThrowingReader(Exception error) : PipeReader
    {
        public int Calls { get; private set; }

        public override void CancelPendingRead()
        {
            Calls++;
            throw error;
        }

        public override void AdvanceTo(SequencePosition consumed) => throw new NotSupportedException();

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => throw new NotSupportedException();

        public override void Complete(Exception? exception = null)
        {
        }

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public override bool TryRead(out ReadResult result) => throw new NotSupportedException();
    }
}
