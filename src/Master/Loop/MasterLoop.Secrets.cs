using System.Security.Cryptography;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Protocol.Resources;

namespace Scheduler.Master.Loop;

/// <summary>Role secrets: kept encrypted (registry records, in memory alike), opened only to send a
/// launching task's values to its agent.</summary>
public sealed partial class MasterLoop
{
    /// <summary>Largest secret value accepted.</summary>
    public const int MaxSecretBytes = 64 * 1024;

    private readonly Dictionary<string, SecretRecord> _secrets = new(StringComparer.Ordinal);

    private void LoadSecrets(RegistrySnapshot snapshot)
    {
        foreach (var (key, record) in snapshot.Secrets)
        {
            _secrets[key] = record;
        }
    }

    /// <summary>A secret name: letters, digits, <c>._-</c>, at most 128 characters.</summary>
    public static string? SecretNameProblem(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 128 || name is "." or ".." || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            return $"'{name}' is not a secret name: use 1 to 128 letters, digits, '.', '_' or '-' (not '.' or '..')";
        }
        return null;
    }

    public Task SetSecret(SetSecretRequest request)
    {
        if (RoleName.Validate(request.Role) is { } badRole)
        {
            throw MasterErrors.InvalidArgument($"invalid role: {badRole}");
        }
        if (SecretNameProblem(request.Name) is { } badName)
        {
            throw MasterErrors.InvalidArgument(badName);
        }
        if (request.Value.Length is 0 or > MaxSecretBytes)
        {
            throw MasterErrors.InvalidArgument($"a secret's value must be 1 byte to {MaxSecretBytes / 1024} KiB; got {request.Value.Length} bytes");
        }
        var box = Security.Secrets ?? throw MasterErrors.FailedPrecondition("this master holds no secrets key (--secrets-key); secrets cannot be stored");
        var (nonce, ciphertext, tag) = box.Seal(request.Role, request.Name, request.Value.Span);
        var record = new SecretRecord
        {
            Role = request.Role,
            Name = request.Name,
            Nonce = ByteString.CopyFrom(nonce),
            Ciphertext = ByteString.CopyFrom(ciphertext),
            Tag = ByteString.CopyFrom(tag),
            UpdatedTime = NowSeconds,
        };
        var key = RegistryRecords.SecretKey(request.Role, request.Name);
        _secrets[key] = record;
        return PersistDurably(RegistryWrite.Put(key, record));
    }

    /// <summary>The secrets of <paramref name="role"/> (all roles when empty) that <paramref name="visible"/> lets through.</summary>
    public ListSecretsResponse ListSecrets(string role, Func<string, bool> visible)
    {
        ArgumentNullException.ThrowIfNull(visible);
        var response = new ListSecretsResponse();
        foreach (var record in _secrets.Values.Where(r => (role.Length == 0 || r.Role == role) && visible(r.Role)).OrderBy(r => r.Role, StringComparer.Ordinal).ThenBy(r => r.Name, StringComparer.Ordinal))
        {
            response.Secrets.Add(new ListSecretsResponse.Types.Entry { Role = record.Role, Name = record.Name, UpdatedTime = record.UpdatedTime, Size = (uint)record.Ciphertext.Length });
        }
        return response;
    }

    public Task DeleteSecret(DeleteSecretRequest request)
    {
        if (RoleName.Validate(request.Role) is not null || SecretNameProblem(request.Name) is not null || !_secrets.Remove(RegistryRecords.SecretKey(request.Role, request.Name)))
        {
            throw MasterErrors.NotFound($"role '{request.Role}' has no secret '{request.Name}'; 'schedctl secret list {request.Role}' lists them");
        }
        return PersistDurably(RegistryWrite.Delete(RegistryRecords.SecretKey(request.Role, request.Name)));
    }

    /// <summary>Checks a task's secret references (pure); null when fine.</summary>
    internal string? SecretsProblem(FrameworkEntry fw, TaskInfo task, string taskRole)
    {
        var envs = new HashSet<string>(StringComparer.Ordinal);
        var files = new HashSet<string>(StringComparer.Ordinal);
        foreach (var secret in task.Secrets)
        {
            var role = secret.Role.Length > 0 ? secret.Role : taskRole;
            if (!fw.Info.Roles.Contains(role))
            {
                return $"task '{task.TaskId}' uses secret '{secret.Name}' of role '{role}', which is not one of the framework's roles ({string.Join(", ", fw.Info.Roles)})";
            }
            if (SecretNameProblem(secret.Name) is { } bad)
            {
                return $"task '{task.TaskId}': {bad}";
            }
            if (!_secrets.ContainsKey(RegistryRecords.SecretKey(role, secret.Name)))
            {
                return $"task '{task.TaskId}' uses secret '{secret.Name}' but role '{role}' has none of that name; an operator stores it with 'schedctl secret set {role} {secret.Name}'";
            }
            if (secret.Env.Length == 0 && secret.File.Length == 0)
            {
                return $"task '{task.TaskId}': secret '{secret.Name}' names neither env nor file; give one or both";
            }
            if (secret.Env.Length > 0 && (!envs.Add(secret.Env) || !secret.Env.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') || char.IsAsciiDigit(secret.Env[0])))
            {
                return $"task '{task.TaskId}': secret '{secret.Name}' has env '{secret.Env}', which is not a distinct variable name (letters, digits, '_'; not starting with a digit)";
            }
            if (secret.File.Length > 0 && (SecretNameProblem(secret.File) is not null || !files.Add(secret.File)))
            {
                return $"task '{task.TaskId}': secret '{secret.Name}' has file '{secret.File}', which is not a distinct plain file name (letters, digits, '.', '_', '-'; it goes in the sandbox's .secrets/)";
            }
        }
        return null;
    }

    /// <summary>The values of a task's secrets, opened for its agent (null when it uses none), or why they cannot be.</summary>
    private (SecretValues? Values, string? Problem) OpenSecrets(TaskInfo task, string taskRole)
    {
        if (task.Secrets.Count == 0)
        {
            return (null, null);
        }
        if (Security.Secrets is not { } box)
        {
            return (null, "this master holds no secrets key (--secrets-key)");
        }
        var values = new SecretValues();
        foreach (var secret in task.Secrets)
        {
            var role = secret.Role.Length > 0 ? secret.Role : taskRole;
            var record = _secrets[RegistryRecords.SecretKey(role, secret.Name)];
            byte[] value;
            try
            {
                value = box.Open(record.Role, record.Name, record.Nonce.Span, record.Ciphertext.Span, record.Tag.Span);
            }
            catch (CryptographicException)
            {
                return (null, $"secret '{record.Name}' of role '{record.Role}' does not decrypt with this master's secrets key: the masters must share one --secrets-key file");
            }
            values.Values.Add(new SecretValue { Env = secret.Env, File = secret.File, Value = ByteString.CopyFrom(value) });
        }
        return (values, null);
    }
}
