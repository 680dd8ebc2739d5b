using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;
using Sched.V1;
using Scheduler.Channels;
using Scheduler.Channels.Tls;
using Scheduler.Protocol;

namespace Scheduler.Hosting.Tests;

/// <summary>
/// TLS and mutual TLS of <see cref="GrpcServer"/> with <see cref="ServerTls"/> and of
/// <see cref="GrpcChannels"/> with <see cref="ClientTls"/>, over loopback, with certificates from a
/// CA generated here and written to PEM files as the daemons read them.
/// </summary>
public sealed class TlsTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);
    private readonly string _dir = Directory.CreateTempSubdirectory("tls-hosting-").FullName;
    private readonly CertificateIssuer _ca = CertificateIssuer.Create("test cluster CA", DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
    private readonly ConcurrentQueue<string> _principals = new();

    public TlsTests()
    {
        _ca.WriteAuthority(CaPath);
        Write("server", _ca.IssueForLoopback("master-1"));
        Write("client", _ca.IssueForLoopback("agent-7"));
    }

    private string CaPath => Path.Combine(_dir, "ca.pem");

    public void Dispose()
    {
        _ca.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task A_client_trusting_the_CA_calls_and_its_certificate_names_the_principal()
    {
        await using var server = await StartAsync();
        using var channel = Channel(server, ClientTls.FromFiles(CaPath, Cert("client"), Key("client")));
        await HealthAsync(channel);
        Assert.Equal(["agent-7"], _principals);

        // Without a certificate the call passes (allowed, not required) and names no principal.
        using var anonymous = Channel(server, ClientTls.FromFiles(CaPath));
        await HealthAsync(anonymous);
        Assert.Equal(["agent-7", "(none)"], _principals);
    }

    [Fact]
    public async Task A_plaintext_client_is_refused()
    {
        await using var server = await StartAsync();
        using var plaintext = GrpcChannels.ForAddress(server.Address);
        var e = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(plaintext));
        Assert.True(e.StatusCode is StatusCode.Unavailable or StatusCode.Internal, e.ToString());
        Assert.Empty(_principals);
    }

    [Fact]
    public async Task A_server_certificate_from_another_CA_is_refused_by_the_client()
    {
        await using var server = await StartAsync();
        using var other = CertificateIssuer.Create("another CA", DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        var otherCa = Path.Combine(_dir, "other-ca.pem");
        other.WriteAuthority(otherCa);
        using var channel = Channel(server, ClientTls.FromFiles(otherCa));
        var e = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(channel));
        Assert.Contains("SSL connection could not be established", e.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(_principals);
    }

    [Fact]
    public async Task An_expired_server_certificate_is_refused_by_the_client()
    {
        var now = DateTimeOffset.UtcNow;
        Write("server", _ca.Issue("master-1", ["localhost"], [IPAddress.Loopback], now.AddHours(-1), now.AddMinutes(-1)));
        await using var server = await StartAsync();
        using var channel = Channel(server, ClientTls.FromFiles(CaPath));
        var e = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(channel));
        Assert.Contains("SSL connection could not be established", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_certificate_for_another_host_is_refused_by_the_client()
    {
        Write("server", _ca.Issue("elsewhere", ["elsewhere.example"], [IPAddress.Parse("10.1.2.3")], DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddHours(1)));
        await using var server = await StartAsync();
        using var channel = Channel(server, ClientTls.FromFiles(CaPath));
        await Assert.ThrowsAsync<RpcException>(() => HealthAsync(channel));
    }

    [Fact]
    public async Task A_client_certificate_from_another_CA_fails_the_handshake()
    {
        using var other = CertificateIssuer.Create("another CA", DateTimeOffset.UtcNow, TimeSpan.FromDays(1));
        Write("intruder", other.IssueForLoopback("agent-7"));
        await using var server = await StartAsync();
        using var channel = Channel(server, ClientTls.FromFiles(CaPath, Cert("intruder"), Key("intruder")));
        await Assert.ThrowsAsync<RpcException>(() => HealthAsync(channel));
        Assert.Empty(_principals);
    }

    [Fact]
    public async Task An_expired_client_certificate_fails_the_handshake()
    {
        var now = DateTimeOffset.UtcNow;
        Write("expired", _ca.Issue("agent-7", ["localhost"], [IPAddress.Loopback], now.AddHours(-2), now.AddMinutes(-1)));
        await using var server = await StartAsync();
        using var channel = Channel(server, ClientTls.FromFiles(CaPath, Cert("expired"), Key("expired")));
        await Assert.ThrowsAsync<RpcException>(() => HealthAsync(channel));
        Assert.Empty(_principals);
    }

    [Fact]
    public async Task Required_client_certificates_refuse_a_client_without_one()
    {
        await using var server = await StartAsync(ClientCertificatePolicy.Required);
        using var anonymous = Channel(server, ClientTls.FromFiles(CaPath));
        await Assert.ThrowsAsync<RpcException>(() => HealthAsync(anonymous));
        using var holder = Channel(server, ClientTls.FromFiles(CaPath, Cert("client"), Key("client")));
        await HealthAsync(holder);
        Assert.Equal(["agent-7"], _principals);
    }

    [Fact]
    public async Task A_service_that_requires_a_certificate_answers_unauthenticated_without_one()
    {
        await using var server = await StartAsync(require: true);
        using var anonymous = Channel(server, ClientTls.FromFiles(CaPath));
        var e = await Assert.ThrowsAsync<RpcException>(() => HealthAsync(anonymous));
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        Assert.Contains("needs a client certificate issued by this cluster's CA", e.Status.Detail, StringComparison.Ordinal);
        Assert.Contains("--tls-cert", e.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_replaced_certificate_is_served_without_a_restart()
    {
        await using var server = await StartAsync();
        var first = await ServedCertificateAsync(server);
        Assert.Equal("CN=master-1", first.Subject);

        Write("server", _ca.IssueForLoopback("master-1-renewed"));
        var second = await ServedCertificateAsync(server);
        Assert.Equal("CN=master-1-renewed", second.Subject);
        Assert.NotEqual(first.SerialNumber, second.SerialNumber);
    }

    [Fact]
    public async Task A_replaced_client_certificate_is_presented_on_the_next_connection()
    {
        await using var server = await StartAsync();
        var tls = ClientTls.FromFiles(CaPath, Cert("client"), Key("client"));
        using (var channel = Channel(server, tls))
        {
            await HealthAsync(channel);
        }
        Write("client", _ca.IssueForLoopback("agent-7-renewed"));
        using (var channel = Channel(server, tls))
        {
            await HealthAsync(channel);
        }
        Assert.Equal(["agent-7", "agent-7-renewed"], _principals);
    }

    [Fact]
    public void Files_that_do_not_go_together_are_refused_with_what_to_add()
    {
        var partial = Assert.Throws<TlsFileException>(() => ServerTls.FromFiles(new TlsFiles(Cert("server"), Key("server"), null)));
        Assert.Contains("missing --tls-ca", partial.Message, StringComparison.Ordinal);
        var noKey = Assert.Throws<TlsFileException>(() => ClientTls.FromFiles(CaPath, Cert("client"), null));
        Assert.Contains("--tls-key", noKey.Message, StringComparison.Ordinal);
        var missing = Assert.Throws<TlsFileException>(() => ClientTls.FromFiles(Path.Combine(_dir, "nope.pem")));
        Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);
        var mismatched = Assert.Throws<TlsFileException>(() => new CertificateFile(Cert("server"), Key("client")));
        Assert.Contains("the key must be the certificate's", mismatched.Message, StringComparison.Ordinal);
        Assert.Null(ServerTls.FromFiles(new TlsFiles(null, null, null)));
    }

    private string Cert(string name) => Path.Combine(_dir, name + ".pem");

    private string Key(string name) => Path.Combine(_dir, name + ".key");

    private void Write(string name, X509Certificate2 certificate)
    {
        using (certificate)
        {
            CertificateIssuer.WritePem(certificate, Cert(name), Key(name));
        }
    }

    private async Task<TestServer> StartAsync(ClientCertificatePolicy policy = ClientCertificatePolicy.Allowed, bool require = false)
    {
        var options = new GrpcServerOptions
        {
            Tls = new ServerTls(new CertificateFile(Cert("server"), Key("server")), new CertificateAuthority(CaPath), policy),
        };
        options.Interceptors.Add(new PrincipalRecorder(_principals, require));
        return await TestServer.StartAsync(options);
    }

    private static GrpcChannel Channel(TestServer server, ClientTls? tls) =>
        GrpcChannels.ForAddress(server.Address, new GrpcChannelSettings { Tls = tls });

    private static Task<GetHealthResponse> HealthAsync(GrpcChannel channel) =>
        channel.AsyncUnaryCall(OperatorMethods.GetHealth, new GetHealthRequest()).ResponseAsync.WaitAsync(Wait);

    /// <summary>The certificate the server presents to a new connection.</summary>
    private async Task<X509Certificate2> ServedCertificateAsync(TestServer server)
    {
        X509Certificate2? seen = null;
        var authority = new CertificateAuthority(CaPath);
        using var channel = GrpcChannels.ForAddress(server.Address, new GrpcChannelSettings
        {
            Tls = ClientTls.Of(authority, null),
            ServerCertificateValidation = (_, presented, chain, errors) =>
            {
                seen = new X509Certificate2(presented!);
                return errors == System.Net.Security.SslPolicyErrors.None || authority.Validate(seen, chain, out string _);
            },
        });
        await HealthAsync(channel);
        return seen ?? throw new InvalidOperationException("no certificate was presented");
    }

    /// <summary>Records each call's client-certificate principal; with <c>require</c>, refuses
    /// calls without a certificate as the master's agent link does.</summary>
    private sealed class PrincipalRecorder(ConcurrentQueue<string> principals, bool require) : ServerCallInterceptor
    {
        protected override Task<T> AroundAsync<T>(ServerCallContext context, Func<Task<T>> call)
        {
            Assert.True(ClientCertificates.IsTls(context));
            if (require)
            {
                ClientCertificates.Require(context, "start the agent with --tls-cert FILE --tls-key FILE");
            }
            principals.Enqueue(ClientCertificates.PrincipalOf(context) ?? "(none)");
            return call();
        }
    }
}
