using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Scheduler.Rpc.Internal;

/// <summary>
/// The logger factory Kestrel and the ASP.NET Core host get from <see cref="RpcServer"/>: the
/// application's, except for the hosting layer's per-request diagnostics. With those enabled the
/// host creates, for every HTTP request, an <c>Activity</c>, a logging scope and a "Request
/// starting" log state, and keeps them for the life of the request: for a server holding one
/// stream per agent for hours, that is memory per agent with no use (calls are logged by the
/// RPC layer itself when they fail).
/// </summary>
internal sealed class ServerLoggerFactory(ILoggerFactory inner) : ILoggerFactory
{
    private const string HostingDiagnostics = "Microsoft.AspNetCore.Hosting.Diagnostics";

    public ILogger CreateLogger(string categoryName)
        => categoryName.StartsWith(HostingDiagnostics, StringComparison.Ordinal)
            ? NullLogger.Instance
            : inner.CreateLogger(categoryName);

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    /// <summary>The application owns <c>inner</c>; nothing to release here.</summary>
    public void Dispose()
    {
    }
}
