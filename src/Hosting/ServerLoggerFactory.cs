using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Scheduler.Hosting;

/// <summary>
/// The logger factory Kestrel and the ASP.NET Core host get from <see cref="GrpcServer"/>: the
/// application's, except for two categories. The hosting layer's per-request diagnostics would
/// create, for every HTTP request, an <c>Activity</c>, a logging scope and a "Request starting"
/// log state, kept for the life of the request: for a server holding one stream per agent for
/// hours, memory per agent with no use. Grpc.AspNetCore's call handler logs handler exceptions,
/// which <see cref="CallLoggingInterceptor"/> logs already, once, with the method.
/// </summary>
internal sealed class ServerLoggerFactory(ILoggerFactory inner) : ILoggerFactory
{
    private const string HostingDiagnostics = "Microsoft.AspNetCore.Hosting.Diagnostics";
    private const string GrpcCallHandler = "Grpc.AspNetCore.Server.ServerCallHandler";

    public ILogger CreateLogger(string categoryName)
        => categoryName.StartsWith(HostingDiagnostics, StringComparison.Ordinal) || categoryName.StartsWith(GrpcCallHandler, StringComparison.Ordinal)
            ? NullLogger.Instance
            : inner.CreateLogger(categoryName);

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    /// <summary>The application owns <c>inner</c>; nothing to release here.</summary>
    public void Dispose()
    {
    }
}
