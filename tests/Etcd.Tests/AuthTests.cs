using Scheduler.Etcd.V3;
using Xunit;

namespace Scheduler.Etcd.Tests;

/// <summary>etcd with authentication enabled (own single-member cluster).</summary>
public sealed class AuthTests
{
    [Fact]
    public async Task A_client_with_credentials_works_and_others_are_refused_clearly()
    {
        await using var cluster = await LocalEtcdCluster.StartAsync(new LocalEtcdClusterOptions { Members = 1 });
        using (var admin = new EtcdClient(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints] }))
        {
            await admin.CallAsync(EtcdMethods.RoleAdd, new AuthRoleAddRequest { Name = "root" }, TestKeys.Timeout());
            await admin.CallAsync(EtcdMethods.UserAdd, new AuthUserAddRequest { Name = "root", Password = "s3cret" }, TestKeys.Timeout());
            await admin.CallAsync(EtcdMethods.UserGrantRole, new AuthUserGrantRoleRequest { User = "root", Role = "root" }, TestKeys.Timeout());
            await admin.CallAsync(EtcdMethods.AuthEnable, new AuthEnableRequest(), TestKeys.Timeout());
        }

        using var client = new EtcdClient(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints], Username = "root", Password = "s3cret" });
        await client.PutAsync("/auth/k", "v", cancellationToken: TestKeys.Timeout());
        Assert.Equal("v", (await client.GetAsync("/auth/k", TestKeys.Timeout()))!.Value.ToStringUtf8());
        // Streams carry the token too.
        await using var watch = client.Watch(EtcdClient.Key("/auth/k"), startRevision: 1);
        Assert.Equal("v", (await watch.ReadAsync(TestKeys.Timeout())).Events[0].Kv.Value.ToStringUtf8());
        await using var keeper = await LeaseKeeper.GrantAsync(client, TimeSpan.FromSeconds(2), cancellationToken: TestKeys.Timeout());

        using var anonymous = new EtcdClient(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints] });
        var refused = await Assert.ThrowsAsync<EtcdException>(() => anonymous.GetAsync("/auth/k", TestKeys.Timeout()));
        Assert.IsNotType<EtcdUnavailableException>(refused);

        using var wrong = new EtcdClient(new EtcdClientOptions { Endpoints = [.. cluster.Endpoints], Username = "root", Password = "nope" });
        var login = await Assert.ThrowsAsync<EtcdException>(() => wrong.GetAsync("/auth/k", TestKeys.Timeout()));
        Assert.Contains("refused the login of user 'root'", login.Message);
    }
}
