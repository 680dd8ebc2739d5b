using Google.Protobuf;
using Sched.V1;
using Scheduler.Master.Registry;
using Xunit;

namespace Scheduler.Master.Tests.Registry;

public sealed class RegistryRecordsTests
{
    [Fact]
    public void Keys_follow_the_registry_layout()
    {
        Assert.Equal("agents/a1", RegistryRecords.AgentKey("a1"));
        Assert.Equal("frameworks/f1", RegistryRecords.FrameworkKey("f1"));
        Assert.Equal("quotas/web", RegistryRecords.QuotaKey("web"));
        Assert.Equal("weights/web", RegistryRecords.WeightKey("web"));
        Assert.Throws<ArgumentException>(() => RegistryRecords.AgentKey(""));
        Assert.Throws<ArgumentException>(() => RegistryRecords.FrameworkKey("a/b"));
        // Hierarchical roles keep their slashes, and such records parse back under their role.
        Assert.Equal("quotas/eng/web", RegistryRecords.QuotaKey("eng/web"));
        var quota = new QuotaInfo { Role = "eng/web" };
        var weight = new WeightInfo { Role = "eng/web", Weight = 2 };
        var snapshot = RegistryRecords.Parse(new Dictionary<string, ByteString>
        {
            [RegistryRecords.QuotaKey(quota.Role)] = quota.ToByteString(),
            [RegistryRecords.WeightKey(weight.Role)] = weight.ToByteString(),
        }, "test");
        Assert.Equal(quota, snapshot.Quotas["eng/web"]);
        Assert.Equal(2, snapshot.Weights["eng/web"].Weight);
    }

    [Fact]
    public async Task Typed_records_round_trip_through_a_store()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sched-records-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var store = FileRegistryStore.Open(dir);
            var agent = new AgentRecord { Info = new AgentInfo { Id = "a1", Hostname = "h1" }, State = AgentRecord.Types.State.Unreachable, Draining = true };
            var framework = new FrameworkRecord { Info = new FrameworkInfo { Id = "f1", Name = "fw" }, RegisteredTime = 12.5 };
            var quota = new QuotaInfo { Role = "web" };
            var weight = new WeightInfo { Role = "web", Weight = 2.5 };
            await store.CommitAsync(
            [
                RegistryRecords.PutAgent(agent), RegistryRecords.PutFramework(framework),
                RegistryRecords.PutQuota(quota), RegistryRecords.PutWeight(weight),
            ], CancellationToken.None);

            var snapshot = await RegistryRecords.LoadAsync(store, store.FilePath, CancellationToken.None);
            Assert.Equal(agent, snapshot.Agents["a1"]);
            Assert.Equal(framework, snapshot.Frameworks["f1"]);
            Assert.Equal(quota, snapshot.Quotas["web"]);
            Assert.Equal(weight, snapshot.Weights["web"]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_record_that_does_not_parse_is_named()
    {
        var records = new Dictionary<string, ByteString>
        {
            ["agents/good"] = new AgentRecord { Info = new AgentInfo { Id = "good" } }.ToByteString(),
            ["frameworks/bad"] = ByteString.CopyFrom(0xFF, 0xFF, 0xFF),
        };
        var e = Assert.Throws<RegistryCorruptException>(() => RegistryRecords.Parse(records, "test-store"));
        Assert.Equal("frameworks/bad", e.Key);
        Assert.Contains("frameworks/bad", e.Message);
        Assert.Contains("test-store", e.Message);
    }

    [Fact]
    public void A_record_whose_id_does_not_match_its_key_is_named()
    {
        var records = new Dictionary<string, ByteString>
        {
            ["agents/a1"] = new AgentRecord { Info = new AgentInfo { Id = "a2" } }.ToByteString(),
        };
        var e = Assert.Throws<RegistryCorruptException>(() => RegistryRecords.Parse(records, "s"));
        Assert.Equal("agents/a1", e.Key);
    }

    [Fact]
    public void An_unknown_key_prefix_is_named()
    {
        var records = new Dictionary<string, ByteString> { ["tasks/t1"] = ByteString.Empty };
        var e = Assert.Throws<RegistryCorruptException>(() => RegistryRecords.Parse(records, "s"));
        Assert.Equal("tasks/t1", e.Key);
    }
}
