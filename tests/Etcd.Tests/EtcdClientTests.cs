using Etcdserverpb;
using Google.Protobuf;
using Xunit;

namespace Scheduler.Etcd.Tests;

public sealed class EtcdClientTests(EtcdClusterFixture fixture) : IClassFixture<EtcdClusterFixture>
{
    [Fact]
    public async Task Put_get_and_delete()
    {
        using var client = fixture.Client();
        var key = TestKeys.Prefix() + "k";
        var put = await client.PutAsync(key, "v1", cancellationToken: TestKeys.Timeout());
        Assert.True(put.Header.Revision > 0);
        var kv = await client.GetAsync(key, TestKeys.Timeout());
        Assert.NotNull(kv);
        Assert.Equal("v1", kv.Value.ToStringUtf8());
        Assert.Equal(put.Header.Revision, kv.CreateRevision);
        Assert.Equal(1, kv.Version);

        var deleted = await client.DeleteRangeAsync(new DeleteRangeRequest { Key = EtcdClient.Key(key) }, TestKeys.Timeout());
        Assert.Equal(1, deleted.Deleted);
        Assert.Null(await client.GetAsync(key, TestKeys.Timeout()));
    }

    [Fact]
    public async Task Prefix_range_pages_with_limit()
    {
        using var client = fixture.Client();
        var prefix = TestKeys.Prefix();
        for (var i = 0; i < 25; i++)
        {
            await client.PutAsync($"{prefix}{i:D2}", $"v{i}", cancellationToken: TestKeys.Timeout());
        }
        var start = EtcdClient.Key(prefix);
        var end = EtcdClient.PrefixEnd(start);
        var seen = new List<string>();
        var key = start;
        while (true)
        {
            var page = await client.RangeAsync(new RangeRequest { Key = key, RangeEnd = end, Limit = 10 }, TestKeys.Timeout());
            seen.AddRange(page.Kvs.Select(k => k.Value.ToStringUtf8()));
            if (!page.More)
            {
                break;
            }
            key = ByteString.CopyFrom([.. page.Kvs[^1].Key.ToByteArray(), 0]);
        }
        Assert.Equal(Enumerable.Range(0, 25).Select(i => $"v{i}"), seen);
    }

    [Fact]
    public async Task Txn_compares_create_revision()
    {
        using var client = fixture.Client();
        var key = EtcdClient.Key(TestKeys.Prefix() + "leader");
        TxnRequest CreateIfAbsent(string value) => new()
        {
            Compare = { new Compare { Key = key, Target = Compare.Types.CompareTarget.Create, Result = Compare.Types.CompareResult.Equal, CreateRevision = 0 } },
            Success = { new RequestOp { RequestPut = new PutRequest { Key = key, Value = ByteString.CopyFromUtf8(value) } } },
            Failure = { new RequestOp { RequestRange = new RangeRequest { Key = key } } },
        };
        var first = await client.TxnAsync(CreateIfAbsent("a"), TestKeys.Timeout());
        Assert.True(first.Succeeded);
        var second = await client.TxnAsync(CreateIfAbsent("b"), TestKeys.Timeout());
        Assert.False(second.Succeeded);
        var current = Assert.Single(second.Responses[0].ResponseRange.Kvs);
        Assert.Equal("a", current.Value.ToStringUtf8());
        Assert.Equal(first.Header.Revision, current.CreateRevision);
    }

    [Fact]
    public void Prefix_end_increments_the_last_byte()
    {
        Assert.Equal(EtcdClient.Key("/a0"), EtcdClient.PrefixEnd(EtcdClient.Key("/a/")));
        Assert.Equal(ByteString.CopyFrom(0x01), EtcdClient.PrefixEnd(ByteString.CopyFrom(0x00, 0xFF)));
        Assert.Equal(ByteString.CopyFrom(0), EtcdClient.PrefixEnd(ByteString.CopyFrom(0xFF)));
    }

    [Fact]
    public async Task Requests_fail_over_from_an_unreachable_endpoint()
    {
        // The first endpoint has nothing listening; requests must go on to the real members at once,
        // not after retrying the dead one until the attempt's deadline.
        using var client = new EtcdClient(new EtcdClientOptions
        {
            Endpoints = ["127.0.0.1:1", .. fixture.Cluster.Endpoints],
            ShuffleEndpoints = false,
            AttemptTimeout = TimeSpan.FromSeconds(5),
            RequestTimeout = TimeSpan.FromSeconds(10),
        });
        Assert.Equal("127.0.0.1:1", client.CurrentEndpoint);
        var started = DateTime.UtcNow;
        await client.PutAsync(TestKeys.Prefix() + "k", "v", cancellationToken: TestKeys.Timeout());
        var firstCall = DateTime.UtcNow - started;
        Assert.True(firstCall < TimeSpan.FromSeconds(2.5), $"the first call took {firstCall}: the dead member was retried instead of left");
        for (var i = 0; i < 3; i++)
        {
            await client.PutAsync(TestKeys.Prefix() + "k", "v", cancellationToken: TestKeys.Timeout());
        }
        Assert.NotEqual("127.0.0.1:1", client.CurrentEndpoint);
    }

    [Fact]
    public async Task No_reachable_endpoint_gives_a_clear_error_within_the_timeout()
    {
        using var client = new EtcdClient(new EtcdClientOptions { Endpoints = ["127.0.0.1:1", "127.0.0.1:2"], RequestTimeout = TimeSpan.FromSeconds(1) });
        var started = DateTime.UtcNow;
        var e = await Assert.ThrowsAsync<EtcdUnavailableException>(() => client.GetAsync("/x", TestKeys.Timeout()));
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(5));
        Assert.Contains("127.0.0.1:1, 127.0.0.1:2", e.Message);
        Assert.Contains("etcd is unavailable", e.Message);
    }

    [Fact]
    public async Task Etcd_errors_are_not_retried_and_name_the_call()
    {
        using var client = fixture.Client();
        // An empty key is invalid in etcd.
        var e = await Assert.ThrowsAsync<EtcdException>(() => client.PutAsync(new PutRequest { Key = ByteString.Empty, Value = ByteString.Empty }, TestKeys.Timeout()));
        Assert.IsNotType<EtcdUnavailableException>(e);
        Assert.Contains("Put", e.Message);
    }
}
