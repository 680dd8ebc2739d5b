namespace Scheduler.Samples.Service;

/// <summary>A long-running service: keep <see cref="Instances"/> copies of a command running.</summary>
public sealed class ServiceSpec
{
    public string Name { get; init; } = "service";

    public int Instances { get; init; } = 3;

    /// <summary>Shell command; <c>{i}</c> is replaced by the instance number.</summary>
    public string Command { get; init; } = "while true; do echo instance {i} alive; sleep 5; done";

    public double Cpus { get; init; } = 1;

    public double Mem { get; init; } = 128;

    /// <summary>Time between SIGTERM and SIGKILL when an instance is stopped.</summary>
    public TimeSpan KillGrace { get; init; } = TimeSpan.FromSeconds(1);
}

/// <summary>Where a service stands.</summary>
public readonly record struct ServiceProgress(int Desired, int Running, int Starting, int Restarts)
{
    public bool Healthy => Running == Desired;
}
