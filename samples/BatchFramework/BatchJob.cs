namespace Scheduler.Samples.Batch;

/// <summary>A batch of independent short tasks.</summary>
public sealed class BatchJob
{
    /// <summary>Job name; task ids are <c>NAME-INDEX-ATTEMPT</c>.</summary>
    public string Name { get; init; } = "batch";

    /// <summary>How many tasks.</summary>
    public int Count { get; init; } = 10;

    /// <summary>Shell command of task <c>i</c>; <c>{i}</c> is replaced by the index.</summary>
    public string Command { get; init; } = "echo task {i}";

    public double Cpus { get; init; } = 0.5;

    public double Mem { get; init; } = 64;

    /// <summary>Attempts per task before it counts as failed (lost or dropped tasks are retried).</summary>
    public int MaxAttempts { get; init; } = 3;
}

/// <summary>Where a batch stands.</summary>
public readonly record struct BatchProgress(int Total, int Waiting, int Launched, int Running, int Finished, int Failed, int Retries)
{
    public bool Done => Finished + Failed == Total;
}
