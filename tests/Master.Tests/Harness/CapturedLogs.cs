using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Scheduler.Master.Tests.Harness;

/// <summary>A logger provider that keeps every formatted message at or above a level
/// (Information unless told), for tests of what the master logs.</summary>
public sealed class CapturedLogs(LogLevel minimum = LogLevel.Information) : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _messages = new();
    private readonly LogLevel _minimum = minimum;

    public IReadOnlyList<string> Messages => [.. _messages];

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturedLogs owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= owner._minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                owner._messages.Enqueue(formatter(state, exception));
            }
        }
    }
}
