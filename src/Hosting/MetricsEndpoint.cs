using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace Scheduler.Hosting;

/// <summary>
/// A Prometheus scrape endpoint (<c>GET /metrics</c>, HTTP/1.1) for the OpenTelemetry instruments
/// of the given meters, served by OpenTelemetry's Prometheus exporter for ASP.NET Core on its own
/// listener (<c>--metrics-listen</c>). Each scrape collects the current values (cumulative).
/// </summary>
public sealed class MetricsEndpoint : IAsyncDisposable
{
    private readonly WebApplication _app;

    private MetricsEndpoint(WebApplication app, string address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The bound address, <c>HOST:PORT</c>.</summary>
    public string Address { get; }

    /// <summary>The scrape URL, <c>http://HOST:PORT/metrics</c>.</summary>
    public Uri Url => new($"http://{Address}/metrics");

    /// <summary>
    /// Starts serving the instruments of <paramref name="meters"/> on <paramref name="listen"/>
    /// (<c>HOST:PORT</c>, port 0 picks one). Only these Meter instances are served: another
    /// component of the process with a meter of the same name (two masters in one test process,
    /// say) is not mixed in.
    /// </summary>
    /// <exception cref="ArgumentException">When <paramref name="listen"/> is not HOST:PORT.</exception>
    public static async Task<MetricsEndpoint> StartAsync(string listen, IReadOnlyCollection<Meter> meters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var text = (listen ?? "").StartsWith("localhost:", StringComparison.Ordinal) ? "127.0.0.1" + listen![9..] : listen ?? "";
        if (!IPEndPoint.TryParse(text, out var endpoint) || !text.Contains(':', StringComparison.Ordinal))
        {
            throw new ArgumentException($"metrics listen address '{listen}' is not HOST:PORT with an IP address or localhost (e.g. 127.0.0.1:9100 or 0.0.0.0:9100)", nameof(listen));
        }
        var web = WebApplication.CreateSlimBuilder();
        web.Logging.ClearProviders();
        web.WebHost.ConfigureKestrel(k => k.Listen(endpoint, o => o.Protocols = HttpProtocols.Http1));
        web.Services.AddOpenTelemetry().WithMetrics(b =>
        {
            foreach (var name in meters.Select(m => m.Name).Distinct(StringComparer.Ordinal))
            {
                b.AddMeter(name);
            }
            b.AddView(instrument => meters.Contains(instrument.Meter) ? null : MetricStreamConfiguration.Drop);
            // Every scrape collects anew: no cached answer between two scrapes.
            b.AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
        });
        var app = web.Build();
        app.MapPrometheusScrapingEndpoint("/metrics");
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        var port = bound is null ? endpoint.Port : new Uri(bound).Port;
        var host = endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]" : endpoint.Address.ToString();
        return new MetricsEndpoint(app, $"{host}:{port}");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
