namespace Scheduler.Master.Loop;

/// <summary>A unit of work for the master loop: runs on the loop's task, with exclusive access
/// to all master state.</summary>
public interface IMasterCommand
{
    void Execute(MasterLoop loop);

    /// <summary>The loop stopped before executing the command.</summary>
    void Abort(Exception error);
}

/// <summary>A command whose result (or failure) completes a task the caller awaits.</summary>
internal sealed class MasterCommand<T>(Func<MasterLoop, T> body) : IMasterCommand
{
    private readonly TaskCompletionSource<T> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<T> Completion => _done.Task;

    public void Execute(MasterLoop loop)
    {
        try
        {
            _done.TrySetResult(body(loop));
        }
        catch (Exception e)
        {
            _done.TrySetException(e);
            if (e is not Grpc.Core.RpcException)
            {
                throw;
            }
        }
    }

    public void Abort(Exception error) => _done.TrySetException(error);
}

/// <summary>A fire-and-forget command (agent messages, timer ticks).</summary>
internal sealed class MasterAction(Action<MasterLoop> body) : IMasterCommand
{
    public void Execute(MasterLoop loop) => body(loop);

    public void Abort(Exception error)
    {
    }
}
