using System.Net;
using Grpc.AspNetCore.Server;
using Grpc.AspNetCore.Server.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Scheduler.Hosting;

/// <summary>The gRPC services one server maps: implementations of generated service bases, each
/// served as a singleton (they hold no per-call state).</summary>
public sealed class GrpcServices
{
    private readonly List<Action<IServiceCollection>> _registrations = [];
    private readonly List<Action<IEndpointRouteBuilder>> _maps = [];

    /// <summary>Serves <paramref name="service"/> (a subclass of a generated <c>…Base</c>).</summary>
    public GrpcServices Add<TService>(TService service)
        where TService : class
    {
        ArgumentNullException.ThrowIfNull(service);
        _registrations.Add(s => s.AddSingleton(service));
        _maps.Add(e => e.MapGrpcService<TService>());
        return this;
    }

    internal void Register(IServiceCollection services) => _registrations.ForEach(r => r(services));

    internal void Map(IEndpointRouteBuilder endpoints) => _maps.ForEach(m => m(endpoints));
}

/// <summary>
/// A gRPC server: ASP.NET Core on Kestrel (HTTP/2 only) with Grpc.AspNetCore, serving the given
/// services plus server reflection, with a failed-call logging interceptor and the configured
/// ones around every call. Unknown methods answer UNIMPLEMENTED; requests that do not parse,
/// INVALID_ARGUMENT with the reason; handler exceptions other than
/// <see cref="Grpc.Core.RpcException"/> answer UNKNOWN without details.
/// </summary>
public sealed class GrpcServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ILogger _logger;
    private readonly TimeSpan _stopTimeout;
    private readonly Lock _stopLock = new();
    private Task? _stopTask;

    private GrpcServer(WebApplication app, IReadOnlyList<IPEndPoint> bound, ILogger logger, TimeSpan stopTimeout)
    {
        _app = app;
        BoundEndpoints = bound;
        _logger = logger;
        _stopTimeout = stopTimeout;
    }

    /// <summary>The endpoints actually bound (port 0 resolved).</summary>
    public IReadOnlyList<IPEndPoint> BoundEndpoints { get; }

    /// <summary>Cancelled when the server starts stopping: long-running calls that have no other
    /// reason to end (a file tail, say) end on it instead of holding the stop up.</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    /// <summary>Binds every endpoint and starts serving. Throws when an address cannot be bound.</summary>
    public static async Task<GrpcServer> StartAsync(GrpcServerOptions options, GrpcServices services, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        if (options.Endpoints.Count == 0)
        {
            throw new ArgumentException("GrpcServerOptions.Endpoints is empty; add at least one GrpcEndpoint (port 0 picks a free port).", nameof(options));
        }
        var loggerFactory = options.LoggerFactory ?? NullLoggerFactory.Instance;
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.Services.AddSingleton<ILoggerFactory>(new ServerLoggerFactory(loggerFactory));
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        var listens = new List<ListenOptions>();
        var tlsLogger = loggerFactory.CreateLogger("Scheduler.Hosting.Tls");
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = null;
            k.Limits.MinRequestBodyDataRate = null;
            k.Limits.MinResponseDataRate = null;
            k.Limits.KeepAliveTimeout = TimeSpan.FromDays(1);
            k.Limits.Http2.MaxStreamsPerConnection = options.MaxConcurrentStreams;
            k.Limits.Http2.InitialConnectionWindowSize = 4 * 1024 * 1024;
            k.Limits.Http2.InitialStreamWindowSize = 2 * 1024 * 1024;
            if (options.KeepAlivePingDelay is { } delay)
            {
                k.Limits.Http2.KeepAlivePingDelay = delay;
                k.Limits.Http2.KeepAlivePingTimeout = options.KeepAlivePingTimeout;
            }
            foreach (var endpoint in options.Endpoints)
            {
                k.Listen(endpoint.EndPoint, lo =>
                {
                    lo.Protocols = HttpProtocols.Http2;
                    if (endpoint.Certificate is not null)
                    {
                        lo.UseHttps(endpoint.Certificate);
                    }
                    else if (options.Tls is { } tls)
                    {
                        lo.UseHttps(Https(tls, tlsLogger));
                    }
                    listens.Add(lo);
                });
            }
        });
        builder.Services.AddRouting();
        var logging = new CallLoggingInterceptor(loggerFactory.CreateLogger("Scheduler.Hosting.Calls"));
        builder.Services.AddSingleton(logging);
        // Interceptors registered as singletons are used as they are; others Grpc.AspNetCore
        // would create anew for every call.
        if (options.Authentication is { } authentication)
        {
            builder.Services.AddSingleton(new AuthenticationInterceptor(authentication));
        }
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = options.MaxReceiveMessageSize;
            o.MaxSendMessageSize = options.MaxSendMessageSize;
            o.EnableDetailedErrors = false;
            o.Interceptors.Add<CallLoggingInterceptor>();
            // By instance, not by type: two interceptors of one type are two interceptors.
            foreach (var interceptor in options.Interceptors)
            {
                o.Interceptors.Add<InstanceInterceptor>(interceptor);
            }
            // Innermost: the configured interceptors (an audit, say) see the calls it refuses.
            if (options.Authentication is not null)
            {
                o.Interceptors.Add<AuthenticationInterceptor>();
            }
        });
        if (options.EnableReflection)
        {
            builder.Services.AddGrpcReflection();
        }
        // Our binder instead of Grpc.AspNetCore's, for every service: requests that do not parse
        // answer INVALID_ARGUMENT rather than UNKNOWN.
        builder.Services.RemoveAll(typeof(IServiceMethodProvider<>));
        builder.Services.AddSingleton(typeof(IServiceMethodProvider<>), typeof(StrictParsingMethodProvider<>));
        builder.Services.AddSingleton<Microsoft.Extensions.Options.IPostConfigureOptions<GrpcServiceOptions>, StrictDecompression.Setup>();
        services.Register(builder.Services);
        var app = builder.Build();
        app.UseRouting();
        services.Map(app);
        if (options.EnableReflection)
        {
            app.MapGrpcReflectionService();
        }
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var bound = listens.Select(l => l.IPEndPoint ?? throw new InvalidOperationException("Kestrel bound a non-IP endpoint.")).ToArray();
        var logger = loggerFactory.CreateLogger("Scheduler.Hosting.GrpcServer");
        HostingLog.Listening(logger, string.Join(", ", bound.Select(b => b.ToString())));
        return new GrpcServer(app, bound, logger, options.StopTimeout);
    }

    /// <summary>Kestrel's TLS for <paramref name="tls"/>: the certificate is read per handshake
    /// (reloaded when its files change); client certificates are checked against the CA alone
    /// (custom root trust, not the system store), and one that does not chain to it (or has
    /// expired) fails the handshake.</summary>
    private static HttpsConnectionAdapterOptions Https(ServerTls tls, ILogger logger)
    {
        var https = new HttpsConnectionAdapterOptions
        {
            ServerCertificateSelector = (_, _) => tls.Certificate.Current,
            CheckCertificateRevocation = false,
            ClientCertificateMode = tls.ClientAuthority is null
                ? ClientCertificateMode.NoCertificate
                : tls.Policy == ClientCertificatePolicy.Required ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.AllowCertificate,
        };
        if (tls.ClientAuthority is { } authority)
        {
            https.ClientCertificateValidation = (certificate, chain, _) =>
            {
                if (authority.Validate(certificate, chain, out var problem))
                {
                    return true;
                }
                HostingLog.ClientCertificateRefused(logger, problem);
                return false;
            };
        }
        return https;
    }

    /// <summary>Stops accepting calls, lets running ones end for up to
    /// <see cref="GrpcServerOptions.StopTimeout"/>, then aborts what is left.</summary>
    public Task StopAsync()
    {
        lock (_stopLock)
        {
            return _stopTask ??= StopCoreAsync();
        }
    }

    private async Task StopCoreAsync()
    {
        HostingLog.Stopping(_logger);
        using var timeout = new CancellationTokenSource(_stopTimeout);
        await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    public ValueTask DisposeAsync() => new(StopAsync());
}
