namespace Scheduler.Master.Loop;

/// <summary>Registry record keys, as documented in protos/sched/v1/registry.proto.</summary>
internal static class RegistryKeys
{
    public const string AgentPrefix = "agents/";
    public const string FrameworkPrefix = "frameworks/";
    public const string QuotaPrefix = "quotas/";
    public const string WeightPrefix = "weights/";

    public static string Agent(string id) => AgentPrefix + id;

    public static string Framework(string id) => FrameworkPrefix + id;

    public static string Quota(string role) => QuotaPrefix + role;

    public static string Weight(string role) => WeightPrefix + role;
}
