using YamlDotNet.RepresentationModel;

namespace Scheduler.Jobs.Spec;

/// <summary>Reads the <c>task</c> section of a job file.</summary>
internal static class TaskReader
{
    public static TaskSpec? Read(string file, YamlFields f, List<JobFileError> errors)
    {
        var command = f.String("command");
        var image = f.String("image");
        var user = f.String("user");
        var killGrace = f.Duration("kill_grace");
        double? cpus = null, mem = null, disk = null;
        int? ports = null;
        if (f.Get("resources") is { } resNode && YamlFields.Open(file, "task.resources", resNode, errors) is { } r)
        {
            cpus = r.Double("cpus", 0.001, 1024, "cores");
            mem = r.Double("mem", 1, 16 * 1024 * 1024, "MiB");
            disk = r.Double("disk", 0, 1024 * 1024 * 1024, "MiB");
            ports = r.Int("ports", 0, 100);
            r.RefuseUnknown();
        }
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        if (f.Get("env") is { } envNode && YamlFields.Open(file, "task.env", envNode, errors) is { } e)
        {
            foreach (var (k, v) in e.Node.Children)
            {
                var key = (k as YamlScalarNode)?.Value ?? "";
                if (key.Length == 0 || key.Contains('=', StringComparison.Ordinal))
                {
                    e.Error(k, $"task.env: '{key}' is not a variable name; write NAME: value");
                }
                else if (v is YamlScalarNode { Value: { } value })
                {
                    env[key] = value;
                }
                else
                {
                    e.Error(v, $"task.env.{key} must be a string value; quote it, e.g. {key}: \"1\"");
                }
            }
        }
        var uris = new List<UriSpec>();
        if (f.Get("uris") is { } urisNode)
        {
            if (urisNode is YamlSequenceNode seq)
            {
                foreach (var item in seq)
                {
                    if (item is YamlScalarNode { Value: { } u })
                    {
                        uris.Add(CheckUri(f, item, u, false, false));
                    }
                    else if (YamlFields.Open(file, "task.uris[]", item, errors) is { } uf)
                    {
                        var value = uf.String("uri", required: true, example: "https://example.com/app.tar.gz");
                        var executable = uf.Bool("executable") ?? false;
                        var extract = uf.Bool("extract") ?? false;
                        uf.RefuseUnknown();
                        if (value is not null)
                        {
                            uris.Add(CheckUri(f, item, value, executable, extract));
                        }
                    }
                }
            }
            else
            {
                f.Error(urisNode, "task.uris must be a list, e.g. uris: [https://example.com/app.tar.gz, {uri: 'file:///opt/tool', executable: true}]");
            }
        }
        HealthCheckSpec? health = null;
        if (f.Get("health_check") is { } hNode && YamlFields.Open(file, "task.health_check", hNode, errors) is { } h)
        {
            var hCommand = h.String("command");
            uint? port = null;
            var path = "/";
            if (h.Get("http") is { } httpNode && YamlFields.Open(file, "task.health_check.http", httpNode, errors) is { } http)
            {
                port = (uint?)http.Int("port", 1, 65535);
                path = http.String("path") ?? "/";
                http.RefuseUnknown();
            }
            var interval = h.Duration("interval", TimeSpan.FromMilliseconds(100));
            var failures = h.Int("failures", 1, 100);
            var grace = h.Duration("grace");
            h.RefuseUnknown();
            if ((hCommand is null) == (port is null) && !h.Has("http"))
            {
                h.Error(hNode, "task.health_check needs exactly one of command: CMD (exit 0 = healthy) or http: {port: P, path: /health}");
            }
            health = new HealthCheckSpec
            {
                Command = hCommand,
                HttpPort = port,
                Path = path,
                Interval = interval ?? TimeSpan.FromSeconds(2),
                ConsecutiveFailures = (uint)(failures ?? 3),
                GracePeriod = grace ?? TimeSpan.Zero,
            };
        }
        f.RefuseUnknown();
        if (command is null && image is null && !f.Has("command") && !f.Has("image"))
        {
            f.Error(f.Node, "task needs a command (command: 'echo hello') or an image (image: oci:/images/app:1)");
        }
        return new TaskSpec
        {
            Command = command,
            Image = image,
            Cpus = cpus ?? 0.1,
            Mem = mem ?? 64,
            Disk = disk ?? 0,
            Ports = ports ?? 0,
            Env = env,
            Uris = uris,
            HealthCheck = health,
            KillGrace = killGrace ?? TimeSpan.FromSeconds(5),
            User = user,
        };
    }

    private static UriSpec CheckUri(YamlFields f, YamlNode node, string value, bool executable, bool extract)
    {
        if (!System.Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https" or "file"))
        {
            f.Error(node, $"task.uris: '{value}' is not an http://, https:// or file:// URI; write e.g. https://example.com/app.tar.gz");
        }
        return new UriSpec(value, executable, extract);
    }
}
