using Scheduler.Channels;
using System.Net;
using System.Text.Json;
using Sched.V1;
using Scheduler.Protocol;
using Xunit;
using Xunit.Abstractions;
using Uri = System.Uri;

namespace Scheduler.Integration.Tests;

/// <summary>
/// The real client of the notebook case: Debian's JupyterHub with the scheduler's spawner
/// (integrations/jupyterhub) and the dummy authenticator, against a real master and agent on
/// loopback. A user logs in over HTTP, the hub starts their server as a task in role
/// <c>notebooks/USER</c>, requests reach it through the hub's proxy, the hub survives a restart
/// without losing it (and notices a server that ended while it was down), and the hub's stop ends
/// the task and gives its resources back.
/// </summary>
public sealed class JupyterHubSpawnerTests(ITestOutputHelper output)
{
    private const string User = "alice";
    private const string Role = "notebooks/" + User;
    private const string OtherUser = "bob";
    private const string OtherRole = "notebooks/" + OtherUser;
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(180);

    [SpawnerUnitTestFact]
    public async Task The_spawners_python_unit_tests_pass()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sched-jh-unit-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            await JupyterHubEnvironment.CopyPackageAsync(dir);
            var (code, text) = await JupyterHubEnvironment.RunAsync("/usr/bin/env",
                ["-C", dir, JupyterHubEnvironment.Python, "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-v"], TimeSpan.FromSeconds(120));
            output.WriteLine(text);
            Assert.True(code == 0, text);
            Assert.Matches(@"Ran [1-9]\d* tests", text);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [JupyterHubFact]
    public async Task A_users_notebook_runs_as_a_task_in_their_role_survives_a_hub_restart_and_gives_its_resources_back_when_stopped()
    {
        await using var cluster = new ClusterFixture();
        var dir = Path.Combine(cluster.WorkDir, "hub");
        var package = Path.Combine(cluster.WorkDir, "hub-python");
        Directory.CreateDirectory(dir);
        await JupyterHubEnvironment.CopyPackageAsync(package);
        await cluster.StartMasterAsync();
        await cluster.StartAgentAsync();
        output.WriteLine($"cluster logs: {cluster.LogDir}");

        using var channel = GrpcChannels.ForAddress(cluster.MasterAddress);
        var op = new Operator.OperatorClient(channel);
        await using var hub = new JupyterHubProcess(dir, package, cluster.LogDir, cluster.MasterAddress);
        await hub.StartAsync(Slow);

        using var cookies = new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = true };
        using var browser = new HttpClient(cookies) { BaseAddress = hub.PublicUrl, Timeout = Slow };
        using var api = new HttpClient { BaseAddress = hub.PublicUrl, Timeout = Slow };
        api.DefaultRequestHeaders.Add("Authorization", "token " + JupyterHubProcess.ApiToken);

        // The user logs in; the hub sends them on to /hub/spawn, which starts their server.
        using (var login = await browser.PostAsync(new Uri("hub/login", UriKind.Relative),
                   new FormUrlEncodedContent(new Dictionary<string, string> { ["username"] = User, ["password"] = "any" })))
        {
            Assert.True(login.IsSuccessStatusCode, $"login answered {(int)login.StatusCode}: {await login.Content.ReadAsStringAsync()}");
            output.WriteLine($"after login: {login.RequestMessage?.RequestUri}");
        }

        // The spawn-pending page's event stream (the spawner's progress) ends with the server ready.
        var progress = await ReadProgressAsync(api, User);
        Assert.Contains("\"ready\": true", progress[^1], StringComparison.Ordinal);

        var task = await WaitForTaskAsync(op, Role, t => t.State == TaskState.TaskRunning, "the notebook task RUNNING");
        Assert.Equal("jupyterhub-singleuser", task.Info.Command.Value);
        Assert.Equal(0.5, Scalar(task.Resources, "cpus"));
        Assert.Equal(256, Scalar(task.Resources, "mem"));
        var roles = await op.GetRolesAsync(new GetRolesRequest());
        var role = Assert.Single(roles.Roles, r => r.Name == Role);
        Assert.Equal(0.5, Scalar(role.Allocated, "cpus"));

        await WaitForReadyAsync(api, User, "the hub to report the server ready");
        await AssertServedThroughProxyAsync(api, browser);

        // A second user, started by an admin through the hub's REST API, in a role of their own.
        (await api.PostAsync(new Uri($"hub/api/users/{OtherUser}", UriKind.Relative), null)).Dispose();
        using (var spawn = await api.PostAsync(new Uri($"hub/api/users/{OtherUser}/server", UriKind.Relative), null))
        {
            Assert.True(spawn.StatusCode is HttpStatusCode.Created or HttpStatusCode.Accepted, $"starting {OtherUser}'s server answered {(int)spawn.StatusCode}");
        }
        var other = await WaitForTaskAsync(op, OtherRole, t => t.State == TaskState.TaskRunning, "the second user's task RUNNING");
        await WaitForReadyAsync(api, OtherUser, "the hub to report the second server ready");
        var framework = Assert.Single((await op.GetFrameworksAsync(new GetFrameworksRequest())).Frameworks, f => f.Info.Name == "jupyterhub");
        Assert.Contains(Role, framework.Info.Roles);
        Assert.Contains(OtherRole, framework.Info.Roles);

        // A hub restart (an upgrade): the tasks keep running while the hub is away. One of them is
        // killed meanwhile; the new hub finds the other again and notices that this one ended.
        await hub.StopAsync();
        Assert.Equal(TaskState.TaskRunning, Assert.Single((await op.GetTasksAsync(new GetTasksRequest { TaskId = task.TaskId })).Tasks).State);
        await op.KillTaskAsync(new KillTaskRequest { TaskId = other.TaskId, FrameworkId = framework.Info.Id });
        await WaitForTaskAsync(op, OtherRole, t => t.TaskId == other.TaskId && t.State == TaskState.TaskKilled, "the second user's task KILLED while the hub is down", includeCompleted: true);
        await hub.StartAsync(Slow);
        Assert.True(hub.Printed($"{User} still running"), "the restarted hub did not find the running server");
        await Poll.UntilAsync(async () => (await op.GetFrameworksAsync(new GetFrameworksRequest())).Frameworks.Any(f => f.Info.Id == framework.Info.Id && f.Connected),
            Slow, "the restarted hub to re-subscribe as the same framework", TimeSpan.FromMilliseconds(250));
        Assert.Single((await op.GetFrameworksAsync(new GetFrameworksRequest())).Frameworks, f => f.Info.Name == "jupyterhub");
        var same = Assert.Single((await op.GetTasksAsync(new GetTasksRequest { FrameworkId = framework.Info.Id })).Tasks);
        Assert.Equal(task.TaskId, same.TaskId); // found again, not started anew
        await WaitForReadyAsync(api, User, "the restarted hub to report the server ready");
        await AssertServedThroughProxyAsync(api, browser);
        await WaitForNoServerAsync(api, OtherUser, "the restarted hub to drop the server that ended while it was down");
        await Poll.UntilAsync(async () => (await op.GetFrameworksAsync(new GetFrameworksRequest())).Frameworks
                .Single(f => f.Info.Id == framework.Info.Id).Info.Roles.SequenceEqual(["notebooks", Role]),
            Slow, "the framework to leave the role of the ended server", TimeSpan.FromMilliseconds(250));

        // The hub's stop (REST API) kills the task; its resources return to the pool.
        using (var stop = await api.DeleteAsync(new Uri($"hub/api/users/{User}/server", UriKind.Relative)))
        {
            Assert.True(stop.StatusCode is HttpStatusCode.NoContent or HttpStatusCode.Accepted, $"stop answered {(int)stop.StatusCode}");
        }
        var ended = await WaitForTaskAsync(op, Role, t => t.TaskId == task.TaskId && t.State == TaskState.TaskKilled, "the notebook task KILLED", includeCompleted: true);
        Assert.Equal(Sched.V1.TaskStatus.Types.Reason.KilledByFramework, ended.Status.Reason);
        await Poll.UntilAsync(async () =>
        {
            var agents = await op.GetAgentsAsync(new GetAgentsRequest());
            var rolesNow = await op.GetRolesAsync(new GetRolesRequest());
            return agents.Agents.All(a => Scalar(a.Allocated, "cpus") == 0 && Scalar(a.Allocated, "mem") == 0)
                && rolesNow.Roles.Where(r => r.Name.StartsWith("notebooks", StringComparison.Ordinal)).All(r => Scalar(r.Allocated, "cpus") == 0);
        }, Slow, "the notebooks' cpus and mem back in the pool", TimeSpan.FromMilliseconds(250));
        await WaitForNoServerAsync(api, User, "the hub to list no server for " + User);
    }

    private async Task<TaskRecord> WaitForTaskAsync(Operator.OperatorClient op, string role, Func<TaskRecord, bool> condition, string what, bool includeCompleted = false)
    {
        TaskRecord? found = null;
        var seen = "";
        await Poll.UntilAsync(async () =>
        {
            var tasks = await op.GetTasksAsync(new GetTasksRequest { IncludeCompleted = includeCompleted });
            var ours = tasks.Tasks.Where(t => t.Role == role).ToList();
            seen = string.Join(", ", ours.Select(t => $"{t.TaskId} {t.State} {t.Status?.Message}"));
            found = ours.FirstOrDefault(condition);
            return found is not null;
        }, Slow, () => $"{what} in role {role} (tasks there: {(seen.Length == 0 ? "none" : seen)})", TimeSpan.FromMilliseconds(250));
        output.WriteLine($"{what}: {found!.TaskId} on {found.AgentId}");
        return found;
    }

    private async Task<List<string>> ReadProgressAsync(HttpClient api, string user)
    {
        using var response = await api.GetAsync(new Uri($"hub/api/users/{user}/server/progress", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead);
        Assert.True(response.IsSuccessStatusCode, $"the progress stream answered {(int)response.StatusCode}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<string>();
        while (await reader.ReadLineAsync().WaitAsync(Slow) is { } line)
        {
            if (line.StartsWith("data:", StringComparison.Ordinal))
            {
                events.Add(line[5..].Trim());
                output.WriteLine("progress: " + events[^1]);
            }
        }
        Assert.NotEmpty(events);
        return events;
    }

    private static Task WaitForReadyAsync(HttpClient api, string user, string what) => Poll.UntilAsync(async () =>
    {
        using var doc = await UserModelAsync(api, user);
        return doc is not null && doc.RootElement.GetProperty("servers").TryGetProperty("", out var server) && server.GetProperty("ready").GetBoolean();
    }, Slow, what, TimeSpan.FromMilliseconds(250));

    private static Task WaitForNoServerAsync(HttpClient api, string user, string what) => Poll.UntilAsync(async () =>
    {
        using var doc = await UserModelAsync(api, user);
        return doc is not null && !doc.RootElement.GetProperty("servers").EnumerateObject().Any();
    }, Slow, what, TimeSpan.FromMilliseconds(250));

    private static async Task<JsonDocument?> UserModelAsync(HttpClient api, string user)
    {
        using var response = await api.GetAsync(new Uri($"hub/api/users/{user}", UriKind.Relative));
        return response.IsSuccessStatusCode ? JsonDocument.Parse(await response.Content.ReadAsStringAsync()) : null;
    }

    /// <summary>The notebook answers through the hub's proxy: its REST API with the hub's token,
    /// and its page for the logged-in user (after the OAuth round trip through the hub).</summary>
    private async Task AssertServedThroughProxyAsync(HttpClient api, HttpClient browser)
    {
        using (var status = await api.GetAsync(new Uri($"user/{User}/api/status", UriKind.Relative)))
        {
            var body = await status.Content.ReadAsStringAsync();
            Assert.True(status.IsSuccessStatusCode, $"/user/{User}/api/status answered {(int)status.StatusCode}: {body}");
            using var doc = JsonDocument.Parse(body);
            Assert.True(doc.RootElement.TryGetProperty("started", out _), body);
        }
        using var page = await browser.GetAsync(new Uri($"user/{User}/tree", UriKind.Relative));
        var html = await page.Content.ReadAsStringAsync();
        Assert.True(page.IsSuccessStatusCode, $"/user/{User}/tree answered {(int)page.StatusCode}");
        Assert.EndsWith($"/user/{User}/tree", page.RequestMessage!.RequestUri!.AbsolutePath, StringComparison.Ordinal);
        Assert.Contains("Jupyter", html, StringComparison.Ordinal);
        output.WriteLine($"served through the proxy: {page.RequestMessage.RequestUri}");
    }

    private static double Scalar(IEnumerable<Resource> resources, string name) =>
        resources.Where(r => r.Name == name && r.ValueCase == Resource.ValueOneofCase.Scalar).Sum(r => r.Scalar);
}
