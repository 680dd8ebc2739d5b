using System.Net;
using Sched.V1;
using Scheduler.Channels;
using Xunit;
using Xunit.Abstractions;
using Uri = System.Uri;

namespace Scheduler.Integration.Tests;

/// <summary>
/// The JupyterHub spawner at the master's limits, with Debian's JupyterHub on a real master and
/// agent: a quota limit on a user's role holds their server back (the spawn page says why) until
/// the limit is raised, and a spawn that would take the hub's framework past the master's
/// <c>--max-roles-per-framework</c> fails at once with the master's reason.
/// </summary>
public sealed class JupyterHubSpawnerLimitsTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(180);

    [JupyterHubFact]
    public async Task A_raised_user_quota_reaches_the_waiting_spawn_and_a_spawn_past_the_role_cap_fails_with_the_reason()
    {
        await using var cluster = new ClusterFixture();
        var dir = Path.Combine(cluster.WorkDir, "hub");
        var package = Path.Combine(cluster.WorkDir, "hub-python");
        Directory.CreateDirectory(dir);
        await JupyterHubEnvironment.CopyPackageAsync(package);
        // The prefix role and two users' roles.
        await cluster.StartMasterAsync("--max-roles-per-framework", "3");
        await cluster.StartAgentAsync();
        output.WriteLine($"cluster logs: {cluster.LogDir}");
        using var channel = GrpcChannels.ForAddress(cluster.MasterAddress);
        var op = new Operator.OperatorClient(channel);
        await op.UpdateQuotaAsync(new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = "notebooks/carol", Limits = { new Resource { Name = "cpus", Scalar = 0.25 } } } } });

        await using var hub = new JupyterHubProcess(dir, package, cluster.LogDir, cluster.MasterAddress);
        await hub.StartAsync(Slow);
        using var api = new HttpClient { BaseAddress = hub.PublicUrl, Timeout = Slow };
        api.DefaultRequestHeaders.Add("Authorization", "token " + JupyterHubProcess.ApiToken);

        // Carol asks for 0.5 cpus under a limit of 0.25: the spawn waits and says why.
        await StartServerAsync(api, "carol");
        var waiting = await ProgressUntilAsync(api, "carol", e => e.Contains("did not fit", StringComparison.Ordinal) && e.Contains("cpus", StringComparison.Ordinal));
        output.WriteLine("carol waits: " + waiting);
        Assert.DoesNotContain((await op.GetTasksAsync(new GetTasksRequest())).Tasks, t => t.Role == "notebooks/carol");

        // The operator raises her limit: the waiting spawn gets its offer and the server runs.
        await op.UpdateQuotaAsync(new UpdateQuotaRequest { Quotas = { new QuotaInfo { Role = "notebooks/carol", Limits = { new Resource { Name = "cpus", Scalar = 1 } } } } });
        await WaitForRunningAsync(op, "notebooks/carol");

        // Dave's role is the third; Erin's would be the fourth, past the master's cap.
        await StartServerAsync(api, "dave");
        await WaitForRunningAsync(op, "notebooks/dave");
        (await api.PostAsync(new Uri("hub/api/users/erin", UriKind.Relative), null)).Dispose();
        using (var refused = await api.PostAsync(new Uri("hub/api/users/erin/server", UriKind.Relative), null))
        {
            // The spawn fails before the hub's slow-spawn timeout, so the hub answers the request with the error.
            Assert.Equal(HttpStatusCode.InternalServerError, refused.StatusCode);
        }
        Assert.True(hub.Printed("the master did not take role notebooks/erin for erin's server (INVALID_ARGUMENT"), "the hub did not report erin's spawn refused");
        Assert.True(hub.Printed("at most 3 per framework (--max-roles-per-framework)"), "the spawn's error does not carry the master's reason");
        Assert.DoesNotContain((await op.GetTasksAsync(new GetTasksRequest())).Tasks, t => t.Role == "notebooks/erin");
        var framework = Assert.Single((await op.GetFrameworksAsync(new GetFrameworksRequest())).Frameworks, f => f.Info.Name == "jupyterhub");
        Assert.Equal(["notebooks", "notebooks/carol", "notebooks/dave"], framework.Info.Roles);

        foreach (var user in new[] { "carol", "dave" })
        {
            (await api.DeleteAsync(new Uri($"hub/api/users/{user}/server", UriKind.Relative))).Dispose();
        }
        await Poll.UntilAsync(async () => (await op.GetTasksAsync(new GetTasksRequest())).Tasks.All(t => !t.Role.StartsWith("notebooks", StringComparison.Ordinal)),
            Slow, "the servers stopped", TimeSpan.FromMilliseconds(250));
    }

    private static async Task StartServerAsync(HttpClient api, string user)
    {
        (await api.PostAsync(new Uri($"hub/api/users/{user}", UriKind.Relative), null)).Dispose();
        using var spawn = await api.PostAsync(new Uri($"hub/api/users/{user}/server", UriKind.Relative), null);
        Assert.True(spawn.StatusCode is HttpStatusCode.Created or HttpStatusCode.Accepted, $"starting {user}'s server answered {(int)spawn.StatusCode}");
    }

    private async Task WaitForRunningAsync(Operator.OperatorClient op, string role)
    {
        var seen = "";
        await Poll.UntilAsync(async () =>
        {
            var tasks = (await op.GetTasksAsync(new GetTasksRequest())).Tasks.Where(t => t.Role == role).ToList();
            seen = string.Join(", ", tasks.Select(t => $"{t.TaskId} {t.State}"));
            return tasks.Any(t => t.State == TaskState.TaskRunning);
        }, Slow, () => $"a task RUNNING in role {role} (there: {(seen.Length == 0 ? "none" : seen)})", TimeSpan.FromMilliseconds(250));
        output.WriteLine($"{role}: {seen}");
    }

    /// <summary>Reads the spawn's progress events until one satisfies <paramref name="wanted"/>.</summary>
    private static async Task<string> ProgressUntilAsync(HttpClient api, string user, Func<string, bool> wanted)
    {
        using var timeout = new CancellationTokenSource(Slow);
        using var response = await api.GetAsync(new Uri($"hub/api/users/{user}/server/progress", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.True(response.IsSuccessStatusCode, $"the progress stream answered {(int)response.StatusCode}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        var seen = new List<string>();
        while (await reader.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                seen.Add(line[5..].Trim());
                if (wanted(seen[^1]))
                {
                    return seen[^1];
                }
            }
        }
        throw new Xunit.Sdk.XunitException($"the progress of {user}'s spawn ended without the expected event; events: {string.Join(" | ", seen)}");
    }
}
