using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Xunit;

namespace Scheduler.Etcd.Tests;

/// <summary>etcd serving clients over TLS (own single-member cluster, self-signed certificate).</summary>
public sealed class TlsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sched-etcd-tls-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_client_trusting_the_certificate_talks_to_etcd_over_tls()
    {
        Directory.CreateDirectory(_dir);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=127.0.0.1", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        var certFile = Path.Combine(_dir, "etcd.crt");
        var keyFile = Path.Combine(_dir, "etcd.key");
        await File.WriteAllTextAsync(certFile, cert.ExportCertificatePem());
        await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem());

        await using var cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1, TlsCertificateFile = certFile, TlsKeyFile = keyFile });
        Assert.StartsWith("https://", cluster.Endpoint(0));
        var thumbprint = cert.Thumbprint;
        using var client = new EtcdClient(new EtcdClientOptions
        {
            Endpoints = [.. cluster.Endpoints],
            ServerCertificateValidation = (_, presented, _, _) => presented is not null && new X509Certificate2(presented).Thumbprint == thumbprint,
        });
        await client.PutAsync("/tls/k", "v", cancellationToken: TestKeys.Timeout());
        Assert.Equal("v", (await client.GetAsync("/tls/k", TestKeys.Timeout()))!.Value.ToStringUtf8());
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(2), cancellationToken: TestKeys.Timeout());
        await Poll.UntilAsync(() => keeper.Renewals >= 2, TimeSpan.FromSeconds(10));

        // A client that does not trust the certificate is refused before sending anything.
        using var untrusting = new EtcdClient(new EtcdClientOptions
        {
            Endpoints = [.. cluster.Endpoints],
            RequestTimeout = TimeSpan.FromSeconds(1),
            ServerCertificateValidation = (_, _, _, _) => false,
        });
        await Assert.ThrowsAnyAsync<EtcdException>(() => untrusting.GetAsync("/tls/k", TestKeys.Timeout()));
    }
}
