using Scheduler.Master.Security;
using Scheduler.Security;
using Xunit;

namespace Scheduler.Master.Tests.Security;

public class AclPolicyTests
{
    private static readonly Caller Alice = new("alice", CallerKind.Token);
    private static readonly Caller Bob = new("bob", CallerKind.Token);
    private static readonly Caller Admin = new("admin", CallerKind.Token);

    private const string Policy = """
        superusers: [admin]
        groups:
          eng: [alice, carol]
        acls:
          - principals: ["group:eng"]
            actions: [register_framework, update_quota]
            objects: [eng]
          - principals: [bob]
            actions: [register_framework]
            objects: ["ops/*"]
          - principals: ["*"]
            actions: [run_task]
            objects: ["*"]
          - principals: [alice]
            actions: [run_task]
            objects: [root]
        default: deny
        """;

    [Fact]
    public void Roles_are_hierarchical_and_a_star_pattern_covers_children_only()
    {
        var policy = AclPolicyFile.Parse(Policy);
        Assert.True(policy.Allows(Alice, AclAction.RegisterFramework, "eng"));
        Assert.True(policy.Allows(Alice, AclAction.RegisterFramework, "eng/web/a"));
        Assert.False(policy.Allows(Alice, AclAction.RegisterFramework, "engineering"));
        Assert.False(policy.Allows(Alice, AclAction.RegisterFramework, "ops"));
        Assert.True(policy.Allows(Bob, AclAction.RegisterFramework, "ops/batch"));
        Assert.False(policy.Allows(Bob, AclAction.RegisterFramework, "ops"));
        Assert.False(policy.Allows(Bob, AclAction.UpdateQuota, "eng"));
    }

    [Fact]
    public void Root_needs_a_rule_naming_it_and_an_empty_user_counts_as_root()
    {
        var policy = AclPolicyFile.Parse(Policy);
        Assert.True(policy.Allows(Bob, AclAction.RunTask, "nobody"));
        Assert.False(policy.Allows(Bob, AclAction.RunTask, "root"));
        Assert.False(policy.Allows(Bob, AclAction.RunTask, "0"));
        Assert.False(policy.Allows(Bob, AclAction.RunTask, ""));
        Assert.True(policy.Allows(Alice, AclAction.RunTask, "root"));
        Assert.True(policy.Allows(Alice, AclAction.RunTask, ""));
        var allowAll = AclPolicyFile.Parse("acls: []\ndefault: allow\n");
        Assert.True(allowAll.Allows(Bob, AclAction.UpdateQuota, "anything"));
        Assert.False(allowAll.Allows(Bob, AclAction.RunTask, "root"));
    }

    [Fact]
    public void Superusers_may_do_everything_and_anonymous_callers_match_only_star()
    {
        var policy = AclPolicyFile.Parse(Policy);
        Assert.True(policy.Allows(Admin, AclAction.UpdateWeights, "eng"));
        Assert.True(policy.Allows(Admin, AclAction.RunTask, "root"));
        Assert.False(policy.Allows(new Caller("admin", CallerKind.Anonymous), AclAction.UpdateWeights, "eng"));
        Assert.True(policy.Allows(Caller.Anonymous, AclAction.RunTask, "nobody"));
        Assert.False(policy.Allows(Caller.Anonymous, AclAction.RegisterFramework, "eng"));
    }

    [Fact]
    public void The_default_policy_lets_agents_register_and_keeps_tenants_apart()
    {
        var policy = AclPolicy.Default;
        Assert.True(policy.Allows(new Caller("agent", CallerKind.Token), AclAction.RegisterAgent, "*"));
        Assert.False(policy.Allows(Alice, AclAction.RegisterAgent, "*"));
        Assert.True(policy.Allows(Alice, AclAction.RegisterFramework, "anything/at/all"));
        Assert.False(policy.Allows(Alice, AclAction.RunTask, "root"));
        Assert.False(policy.Allows(Alice, AclAction.ViewTask, "bob"));
        Assert.False(policy.Allows(Alice, AclAction.KillTask, "bob"));
        Assert.False(policy.Allows(Alice, AclAction.UpdateQuota, "eng"));
        Assert.True(policy.Allows(Admin, AclAction.UpdateQuota, "eng"));
    }

    [Fact]
    public void Every_mistake_of_an_acl_file_is_reported_with_its_line_and_column()
    {
        var text = """
            superuser: [admin]
            acls:
              - principals: [alice]
                actions: [register_framwork]
                objects: [eng]
              - principals: ["group:nobody"]
                actions: [run_task]
                objects: ["*"]
              - actions: [update_quota]
                objects: [eng]
            default: maybe
            """;
        var e = Assert.Throws<AclFileException>(() => AclPolicyFile.Parse(text, "acls.yaml"));
        Assert.Contains("acls.yaml:1:1: unknown key 'superuser'; did you mean 'superusers'?", e.Message, StringComparison.Ordinal);
        Assert.Contains("acls.yaml:4:15: unknown action 'register_framwork'; did you mean 'register_framework'?", e.Message, StringComparison.Ordinal);
        Assert.Contains("the rule has no principals", e.Message, StringComparison.Ordinal);
        Assert.Contains("acls.yaml:11:10: default must be 'allow' or 'deny', not 'maybe'", e.Message, StringComparison.Ordinal);
        Assert.Contains("'group:nobody' names a group that 'groups' does not define", e.Message, StringComparison.Ordinal);
        var yaml = Assert.Throws<AclFileException>(() => AclPolicyFile.Parse("acls: [\n", "x.yaml"));
        Assert.StartsWith("x.yaml:", yaml.Message, StringComparison.Ordinal);
        Assert.Throws<AclFileException>(() => AclPolicyFile.Parse("", "empty.yaml"));
    }

    [Fact]
    public async Task A_changed_acl_file_is_read_again_and_a_bad_edit_keeps_the_previous_rules()
    {
        var dir = Directory.CreateTempSubdirectory("sched-acl-test-");
        try
        {
            var path = Path.Combine(dir.FullName, "acls.yaml");
            await File.WriteAllTextAsync(path, "acls:\n  - principals: [alice]\n    actions: [update_quota]\n    objects: [eng]\n");
            var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
            var authorizer = Authorizer.FromFile(path, time);
            var failures = new List<string>();
            authorizer.ReloadFailed += failures.Add;
            Assert.True(authorizer.Allows(Alice, AclAction.UpdateQuota, "eng"));
            Assert.False(authorizer.Allows(Bob, AclAction.UpdateQuota, "eng"));

            await File.WriteAllTextAsync(path, "acls:\n  - principals: [bob]\n    actions: [update_quota]\n    objects: [eng]\n");
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(5));
            time.Advance(TimeSpan.FromSeconds(2));
            Assert.True(authorizer.Allows(Bob, AclAction.UpdateQuota, "eng"));
            Assert.False(authorizer.Allows(Alice, AclAction.UpdateQuota, "eng"));

            await File.WriteAllTextAsync(path, "acls:\n  - principals: [alice]\n    actions: [update_qouta]\n    objects: [eng]\n");
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(10));
            time.Advance(TimeSpan.FromSeconds(2));
            Assert.True(authorizer.Allows(Bob, AclAction.UpdateQuota, "eng"));
            Assert.Single(failures);
            Assert.Contains("update_qouta", failures[0], StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Every_method_the_master_serves_is_classified()
    {
        var unclassified = MethodAccess.Services
            .SelectMany(s => s.Methods.Select(m => $"/{s.FullName}/{m.Name}"))
            .Where(m => MethodAccess.Of(m) is null)
            .ToList();
        Assert.True(unclassified.Count == 0, "methods without an access class in MethodAccess (decide Public, Read or Mutate): " + string.Join(", ", unclassified));
        Assert.Equal(Access.Public, MethodAccess.Of("/grpc.health.v1.Health/Check"));
        Assert.Equal(Access.Mutate, MethodAccess.Of("/sched.v1.Operator/UpdateQuota"));
        Assert.True(MethodAccess.IsMutating("/sched.v1.Operator/SomethingNew"));
    }

    [Fact]
    public async Task Tokens_carry_the_principal_and_expire()
    {
        using var keys = TokenKeys.Create();
        using var other = TokenKeys.Create();
        var token = keys.Issue("alice", TimeSpan.FromHours(1), DateTimeOffset.UtcNow);
        Assert.Equal(("alice", (string?)null), await keys.ValidateAsync(token));
        var (who, error) = await other.ValidateAsync(token);
        Assert.Null(who);
        Assert.NotNull(error);
        var expired = keys.Issue("alice", TimeSpan.FromMinutes(1), DateTimeOffset.UtcNow.AddHours(-1));
        Assert.Null((await keys.ValidateAsync(expired)).Principal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void A_token_key_readable_by_others_is_refused()
    {
        var dir = Directory.CreateTempSubdirectory("sched-key-test-");
        try
        {
            var path = Path.Combine(dir.FullName, "key.pem");
            TokenKeys.LoadOrCreate(path).Dispose();
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            TokenKeys.LoadOrCreate(path).Dispose();
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
            var e = Assert.Throws<InvalidOperationException>(() => TokenKeys.LoadOrCreate(path));
            Assert.Contains("chmod 600", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
