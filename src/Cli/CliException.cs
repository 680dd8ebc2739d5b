namespace Scheduler.Cli;

/// <summary>
/// A failure to report to the user as one line on stderr, with the process exit code:
/// <see cref="Usage"/> (2) for bad input, <see cref="Failure"/> (1) for everything else.
/// </summary>
public sealed class CliException : Exception
{
    public const int Usage = 2;
    public const int Failure = 1;

    public CliException()
        : this("failed", Failure)
    {
    }

    public CliException(string message)
        : this(message, Failure)
    {
    }

    public CliException(string message, Exception innerException)
        : base(message, innerException)
    {
        ExitCode = Failure;
    }

    public CliException(string message, int exitCode)
        : base(message)
    {
        ExitCode = exitCode;
    }

    public int ExitCode { get; }

    public static CliException BadInput(string message) => new(message, Usage);
}
