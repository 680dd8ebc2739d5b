using System.IO.Compression;
using System.Security.Cryptography;
using Sched.V1;
using Scheduler.Agent.Images;

namespace Scheduler.Agent.Execution;

/// <summary>
/// Fetches a task's URIs (<c>file://</c>, <c>http(s)://</c>) into its sandbox before it starts:
/// optional sha256 verification, executable bit, extraction of .tar, .tar.gz, .tgz and .zip
/// (tar archives through the same safe unpacker as image layers), and a cache keyed by checksum
/// shared across tasks (<c>&lt;work&gt;/cache/&lt;sha256&gt;</c>). Failures throw
/// <see cref="TaskLaunchException"/> with REASON_FETCH_FAILED; nothing partial is left.
/// <para>
/// The agent fetches as root on behalf of any task's user, so <c>file://</c> reads only regular
/// files beneath the operator's <paramref name="fileRoots"/> (<c>--fetch-allow-dir</c>; none by
/// default), opened without following symbolic links: a task cannot have <c>/etc/shadow</c>, or a
/// link to it, copied into its sandbox.
/// </para>
/// </summary>
public sealed class UriFetcher(string cacheDir, HttpClient http, long maxBytes, IReadOnlyList<string>? fileRoots = null)
{
    private readonly List<string> _fileRoots = (fileRoots ?? []).Select(r => Path.TrimEndingDirectorySeparator(Path.GetFullPath(r))).ToList();

    public async Task FetchAllAsync(IEnumerable<Sched.V1.Uri> uris, string sandbox, CancellationToken cancellationToken)
    {
        foreach (var uri in uris)
        {
            await FetchAsync(uri, sandbox, cancellationToken);
        }
    }

    public async Task FetchAsync(Sched.V1.Uri uri, string sandbox, CancellationToken cancellationToken)
    {
        if (!System.Uri.TryCreate(uri.Value, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("file" or "http" or "https"))
        {
            throw Failed(uri, "only file://, http:// and https:// URIs are supported");
        }
        var name = string.IsNullOrEmpty(uri.OutputFile) ? Path.GetFileName(parsed.LocalPath) : uri.OutputFile;
        if (name.Length == 0 || name.Contains('/', StringComparison.Ordinal) || name is "." or "..")
        {
            throw Failed(uri, $"cannot name the fetched file '{name}'; set output_file");
        }
        var expected = uri.Sha256.ToLowerInvariant();
        var target = Path.Combine(sandbox, name);
        var cached = expected.Length == 64 ? Path.Combine(cacheDir, expected) : null;
        var tmp = Path.Combine(sandbox, $".fetch-{Guid.NewGuid():N}");
        try
        {
            if (uri.Cache && cached is not null && File.Exists(cached))
            {
                File.Copy(cached, tmp);
            }
            else
            {
                await DownloadAsync(parsed, tmp, uri, cancellationToken);
            }
            if (expected.Length > 0)
            {
                await using var stream = File.OpenRead(tmp);
                var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken));
                if (actual != expected)
                {
                    throw Failed(uri, $"checksum mismatch: expected sha256 {expected}, got {actual}; fix the URI or its sha256");
                }
            }
            if (uri.Cache && cached is not null && !File.Exists(cached))
            {
                Directory.CreateDirectory(cacheDir);
                var cacheTmp = cached + "." + Guid.NewGuid().ToString("N")[..8];
                File.Copy(tmp, cacheTmp);
                File.Move(cacheTmp, cached, overwrite: true);
            }
            if (uri.Extract && IsArchive(name))
            {
                Extract(tmp, name, sandbox, uri);
                File.Delete(tmp);
                return;
            }
            File.Move(tmp, target, overwrite: true);
            if (uri.Executable && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(target, File.GetUnixFileMode(target) | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            }
        }
        finally
        {
            if (File.Exists(tmp))
            {
                File.Delete(tmp);
            }
        }
    }

    private async Task DownloadAsync(System.Uri parsed, string tmp, Sched.V1.Uri uri, CancellationToken ct)
    {
        if (parsed.IsFile)
        {
            await CopyAllowedFileAsync(parsed.LocalPath, tmp, uri, ct);
            return;
        }
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync(parsed, HttpCompletionOption.ResponseHeadersRead, ct);
        }
        catch (HttpRequestException e)
        {
            throw Failed(uri, $"cannot download: {e.Message}");
        }
        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                throw Failed(uri, $"the server answered {(int)response.StatusCode} {response.ReasonPhrase}");
            }
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            await using var file = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write);
            var buffer = new byte[81920];
            long total = 0;
            int read;
            while ((read = await body.ReadAsync(buffer, ct)) > 0)
            {
                total += read;
                if (total > maxBytes)
                {
                    throw Failed(uri, $"larger than the {maxBytes / 1048576} MiB fetch limit");
                }
                await file.WriteAsync(buffer.AsMemory(0, read), ct);
            }
        }
    }

    private async Task CopyAllowedFileAsync(string path, string tmp, Sched.V1.Uri uri, CancellationToken ct)
    {
        var root = _fileRoots.FirstOrDefault(r => path.StartsWith(r + "/", StringComparison.Ordinal));
        if (root is null)
        {
            throw Failed(uri, _fileRoots.Count == 0
                ? "this agent fetches no file:// URIs: an operator allows directories with --fetch-allow-dir DIR; serve the file over http(s) or ask for it to be allowed"
                : $"{path} is not under a directory this agent allows file:// URIs from ({string.Join(", ", _fileRoots)}; set with --fetch-allow-dir DIR); copy it into one of them or serve it over http(s)");
        }
        try
        {
            using var source = new Files.SandboxDirectory(root, description: $"the allowed directory {root}").OpenFile(path[(root.Length + 1)..]);
            if (RandomAccess.GetLength(source) > maxBytes)
            {
                throw Failed(uri, $"larger than the {maxBytes / 1048576} MiB fetch limit");
            }
            await using var from = new FileStream(source, FileAccess.Read);
            await using var to = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write);
            await from.CopyToAsync(to, ct);
        }
        catch (Files.SandboxAccessException e)
        {
            throw Failed(uri, e.Message);
        }
    }

    private static bool IsArchive(string name) => name.EndsWith(".tar", StringComparison.Ordinal) || name.EndsWith(".tar.gz", StringComparison.Ordinal)
        || name.EndsWith(".tgz", StringComparison.Ordinal) || name.EndsWith(".zip", StringComparison.Ordinal);

    private void Extract(string archive, string name, string sandbox, Sched.V1.Uri uri)
    {
        try
        {
            if (name.EndsWith(".zip", StringComparison.Ordinal))
            {
                // ZipFile refuses entries that would land outside the destination.
                ZipFile.ExtractToDirectory(archive, sandbox, overwriteFiles: true);
                return;
            }
            using var stream = File.OpenRead(archive);
            new LayerUnpacker(sandbox, maxBytes).Apply(stream, gzip: !name.EndsWith(".tar", StringComparison.Ordinal));
        }
        catch (Exception e) when (e is ImageException or IOException or InvalidDataException)
        {
            throw Failed(uri, "cannot extract: " + e.Message);
        }
    }

    private static TaskLaunchException Failed(Sched.V1.Uri uri, string why)
        => new(TaskStatus.Types.Reason.FetchFailed, $"fetching {uri.Value} failed: {why}");
}
