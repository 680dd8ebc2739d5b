using System.Diagnostics.Metrics;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Scheduler.Metrics;

/// <summary>
/// A Prometheus scrape endpoint (<c>GET /metrics</c>, HTTP/1.1) for the OpenTelemetry instruments
/// of the given meters. Each scrape collects the meters' current values (pull, cumulative).
/// </summary>
public sealed class MetricsEndpoint : IAsyncDisposable
{
    private readonly MeterProvider _provider;
    private readonly ScrapeExporter _exporter;
    private readonly BaseExportingMetricReader _reader;
    private readonly WebApplication _app;

    private MetricsEndpoint(MeterProvider provider, ScrapeExporter exporter, BaseExportingMetricReader reader, WebApplication app, string address)
    {
        _provider = provider;
        _exporter = exporter;
        _reader = reader;
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
        var exporter = new ScrapeExporter();
        var reader = new BaseExportingMetricReader(exporter) { TemporalityPreference = MetricReaderTemporalityPreference.Cumulative };
        var builder = Sdk.CreateMeterProviderBuilder();
        foreach (var name in meters.Select(m => m.Name).Distinct(StringComparer.Ordinal))
        {
            builder.AddMeter(name);
        }
        builder.AddView(instrument => meters.Contains(instrument.Meter) ? null : MetricStreamConfiguration.Drop);
        var provider = builder.AddReader(reader).Build();

        var web = WebApplication.CreateSlimBuilder();
        web.Logging.ClearProviders();
        web.WebHost.ConfigureKestrel(k => k.Listen(endpoint, o => o.Protocols = HttpProtocols.Http1));
        var app = web.Build();
        app.MapGet("/metrics", async (HttpContext context) =>
        {
            var text = exporter.Scrape(reader); // one collection at a time: the exporter serialises them
            context.Response.ContentType = PrometheusText.ContentType;
            await context.Response.WriteAsync(text, context.RequestAborted).ConfigureAwait(false);
        });
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            provider.Dispose();
            throw;
        }
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        var port = bound is null ? endpoint.Port : new Uri(bound).Port;
        var host = endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]" : endpoint.Address.ToString();
        return new MetricsEndpoint(provider, exporter, reader, app, $"{host}:{port}");
    }

    /// <summary>Collects and renders the current values, as a scrape would.</summary>
    public string Scrape() => _exporter.Scrape(_reader);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _provider.Dispose();
    }

    /// <summary>Renders what the reader hands over on each collect.</summary>
    private sealed class ScrapeExporter : BaseExporter<Metric>
    {
        private readonly Lock _lock = new();
        private StringBuilder? _output;

        public string Scrape(MetricReader reader)
        {
            lock (_lock)
            {
                _output = new StringBuilder(4096);
                try
                {
                    reader.Collect();
                    return _output.ToString();
                }
                finally
                {
                    _output = null;
                }
            }
        }

        public override ExportResult Export(in Batch<Metric> batch)
        {
            if (_output is { } output)
            {
                PrometheusText.Write(output, batch);
            }
            return ExportResult.Success;
        }
    }
}
