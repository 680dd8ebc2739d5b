using Etcdserverpb;
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
            // Any dotnet-etcd call goes through the client's failover with CallAsync.
            await admin.CallAsync("RoleAdd", (etcd, deadline, ct) => etcd.RoleAddAsync(new AuthRoleAddRequest { Name = "root" }, null, deadline, ct), TestKeys.Timeout());
            await admin.CallAsync("UserAdd", (etcd, deadline, ct) => etcd.UserAddAsync(new AuthUserAddRequest { Name = "root", Password = "s3cret" }, null, deadline, ct), TestKeys.Timeout());
            await admin.CallAsync("UserGrantRole", (etcd, deadline, ct) => etcd.UserGrantRoleAsync(new AuthUserGrantRoleRequest { User = "root", Role = "root" }, null, deadline, ct), TestKeys.Timeout());
            await admin.CallAsync("AuthEnable", (etcd, deadline, ct) => etcd.AuthEnableAsync(new AuthEnableRequest(), null, deadline, ct), TestKeys.Timeout());
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
