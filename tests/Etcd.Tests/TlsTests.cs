using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Etcdserverpb;
using Xunit;

namespace Scheduler.Etcd.Tests;

/// <summary>etcd serving clients over TLS (own single-member cluster, self-signed certificate).</summary>
public sealed class TlsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sched-etcd-tls-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_client_trusting_the_certificate_talks_to_etcd_over_tls()
    {
        var (certFile, keyFile, thumbprint) = await SelfSignedCertificateAsync();
        await using var cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1, TlsCertificateFile = certFile, TlsKeyFile = keyFile });
        Assert.StartsWith("https://", cluster.Endpoint(0));
        var seen = SslPolicyErrors.None;
        using var client = new EtcdClient(new EtcdClientOptions
        {
            Endpoints = [.. cluster.Endpoints],
            ServerCertificateValidation = (sender, presented, chain, errors) =>
            {
                seen |= errors;
                return Trusting(thumbprint)(sender, presented, chain, errors);
            },
        });
        await client.PutAsync("/tls/k", "v", cancellationToken: TestKeys.Timeout());
        Assert.Equal("v", (await client.GetAsync("/tls/k", TestKeys.Timeout()))!.Value.ToStringUtf8());
        // The member's host is the name checked (so a CA-signed certificate naming it passes the
        // system's own validation); only the self-signed chain is untrusted.
        Assert.Equal(SslPolicyErrors.RemoteCertificateChainErrors, seen);
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

    [Fact]
    public async Task User_and_password_authentication_works_over_tls()
    {
        var (certFile, keyFile, thumbprint) = await SelfSignedCertificateAsync();
        await using var cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1, TlsCertificateFile = certFile, TlsKeyFile = keyFile });
        using (var admin = new EtcdClient(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints], ServerCertificateValidation = Trusting(thumbprint) }))
        {
            await admin.CallAsync("RoleAdd", (etcd, deadline, ct) => etcd.RoleAddAsync(new AuthRoleAddRequest { Name = "root" }, null, deadline, ct), TestKeys.Timeout());
            await admin.CallAsync("UserAdd", (etcd, deadline, ct) => etcd.UserAddAsync(new AuthUserAddRequest { Name = "root", Password = "s3cret" }, null, deadline, ct), TestKeys.Timeout());
            await admin.CallAsync("UserGrantRole", (etcd, deadline, ct) => etcd.UserGrantRoleAsync(new AuthUserGrantRoleRequest { User = "root", Role = "root" }, null, deadline, ct), TestKeys.Timeout());
            await admin.CallAsync("AuthEnable", (etcd, deadline, ct) => etcd.AuthEnableAsync(new AuthEnableRequest(), null, deadline, ct), TestKeys.Timeout());
        }

        using var client = new EtcdClient(new EtcdClientOptions
        {
            Endpoints = [.. cluster.Endpoints],
            Username = "root",
            Password = "s3cret",
            ServerCertificateValidation = Trusting(thumbprint),
        });
        await client.PutAsync("/tls-auth/k", "v", cancellationToken: TestKeys.Timeout());
        Assert.Equal("v", (await client.GetAsync("/tls-auth/k", TestKeys.Timeout()))!.Value.ToStringUtf8());
        await using var watch = client.Watch(EtcdClient.Key("/tls-auth/k"), startRevision: 1);
        Assert.Equal("v", (await watch.ReadAsync(TestKeys.Timeout())).Events[0].Kv.Value.ToStringUtf8());
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(2), cancellationToken: TestKeys.Timeout());
        await Poll.UntilAsync(() => keeper.Renewals >= 2, TimeSpan.FromSeconds(10));

        using var anonymous = new EtcdClient(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints], ServerCertificateValidation = Trusting(thumbprint) });
        var refused = await Assert.ThrowsAsync<EtcdException>(() => anonymous.GetAsync("/tls-auth/k", TestKeys.Timeout()));
        Assert.IsNotType<EtcdUnavailableException>(refused);
    }

    private static RemoteCertificateValidationCallback Trusting(string thumbprint) =>
        (_, presented, _, _) => presented is not null && new X509Certificate2(presented).Thumbprint == thumbprint;

    /// <summary>A certificate for 127.0.0.1 and its key, as PEM files in this test's directory.</summary>
    private async Task<(string CertFile, string KeyFile, string Thumbprint)> SelfSignedCertificateAsync()
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
        return (certFile, keyFile, cert.Thumbprint);
    }
}
