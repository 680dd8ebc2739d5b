namespace Scheduler.Jobs.Spec;

/// <summary>One thing wrong in a job file, with its position (1-based line and column).</summary>
public sealed record JobFileError(string File, long Line, long Column, string Message)
{
    public override string ToString() => $"{File}:{Line}:{Column}: {Message}";
}

/// <summary>A job file was refused; <see cref="Errors"/> says where and what to write instead.</summary>
public sealed class JobFileException : Exception
{
    public JobFileException(IReadOnlyList<JobFileError> errors)
        : base(string.Join(Environment.NewLine, errors))
    {
        Errors = errors;
    }

    public JobFileException()
        : this([])
    {
    }

    public JobFileException(string message)
        : base(message)
    {
        Errors = [];
    }

    public JobFileException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [];
    }

    public IReadOnlyList<JobFileError> Errors { get; } = [];
}
