using System.Security.Cryptography;
using Google.Protobuf;
using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Protocol.Resources;
using Scheduler.Security;

namespace Scheduler.Master.State;

/// <summary>
/// The secrets of roles as the master holds and persists them: sealed records by registry key,
/// the same in memory as in the registry. A value is plain only on its way in
/// (<see cref="Set"/> seals it) and on its way to a launching task's agent (<see cref="Open"/>);
/// the book never keeps it. Changes return the registry write that makes them durable.
/// Owned by the master loop (not thread-safe).
/// </summary>
public sealed class SecretBook
{
    /// <summary>Largest secret value accepted.</summary>
    public const int MaxSecretBytes = 64 * 1024;

    private readonly Dictionary<string, SecretRecord> _secrets = new(StringComparer.Ordinal);

    /// <summary>Takes the secrets of a registry snapshot (at the start of a term).</summary>
    public void Load(RegistrySnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        foreach (var (key, record) in snapshot.Secrets)
        {
            _secrets[key] = record;
        }
    }

    /// <summary>A secret name: letters, digits, <c>._-</c>, at most 128 characters; null when valid.</summary>
    public static string? NameProblem(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 128 || name is "." or ".." || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
        {
            return $"'{name}' is not a secret name: use 1 to 128 letters, digits, '.', '_' or '-' (not '.' or '..')";
        }
        return null;
    }

    /// <summary>What is wrong with a secret to set (role, name, size of the value); null when nothing is.</summary>
    public static string? Problem(string role, string name, int valueBytes)
    {
        if (RoleName.Validate(role) is { } badRole)
        {
            return $"invalid role: {badRole}";
        }
        if (NameProblem(name) is { } badName)
        {
            return badName;
        }
        if (valueBytes is 0 or > MaxSecretBytes)
        {
            return $"a secret's value must be 1 byte to {MaxSecretBytes / 1024} KiB; got {valueBytes} bytes";
        }
        return null;
    }

    /// <summary>Seals <paramref name="value"/> with <paramref name="box"/> as the secret
    /// <paramref name="name"/> of <paramref name="role"/> (replacing one of that name); returns the
    /// registry write. Precondition: <see cref="Problem"/> found nothing.</summary>
    public RegistryWrite Set(SecretBox box, string role, string name, ReadOnlySpan<byte> value, double now)
    {
        ArgumentNullException.ThrowIfNull(box);
        var (nonce, ciphertext, tag) = box.Seal(role, name, value);
        var record = new SecretRecord
        {
            Role = role,
            Name = name,
            Nonce = ByteString.CopyFrom(nonce),
            Ciphertext = ByteString.CopyFrom(ciphertext),
            Tag = ByteString.CopyFrom(tag),
            UpdatedTime = now,
        };
        var key = RegistryRecords.SecretKey(role, name);
        _secrets[key] = record;
        return RegistryWrite.Put(key, record);
    }

    /// <summary>Removes the secret <paramref name="name"/> of <paramref name="role"/>; returns the
    /// registry write, or null when the role has no such secret (or the names are not valid ones).</summary>
    public RegistryWrite? Delete(string role, string name)
    {
        if (RoleName.Validate(role) is not null || NameProblem(name) is not null || !_secrets.Remove(RegistryRecords.SecretKey(role, name)))
        {
            return null;
        }
        return RegistryWrite.Delete(RegistryRecords.SecretKey(role, name));
    }

    /// <summary>The secrets of <paramref name="role"/> (all roles when empty) that <paramref name="visible"/>
    /// lets through, by role and name, without their values.</summary>
    public ListSecretsResponse List(string role, Func<string, bool> visible)
    {
        ArgumentNullException.ThrowIfNull(visible);
        var response = new ListSecretsResponse();
        foreach (var record in _secrets.Values.Where(r => (role.Length == 0 || r.Role == role) && visible(r.Role)).OrderBy(r => r.Role, StringComparer.Ordinal).ThenBy(r => r.Name, StringComparer.Ordinal))
        {
            response.Secrets.Add(new ListSecretsResponse.Types.Entry { Role = record.Role, Name = record.Name, UpdatedTime = record.UpdatedTime, Size = (uint)record.Ciphertext.Length });
        }
        return response;
    }

    /// <summary>What is wrong with the secret references of <paramref name="task"/>, launched in
    /// <paramref name="taskRole"/> by a framework of <paramref name="frameworkRoles"/>; null when
    /// nothing is. Changes nothing.</summary>
    public string? TaskProblem(IReadOnlyCollection<string> frameworkRoles, TaskInfo task, string taskRole)
    {
        ArgumentNullException.ThrowIfNull(frameworkRoles);
        ArgumentNullException.ThrowIfNull(task);
        var envs = new HashSet<string>(StringComparer.Ordinal);
        var files = new HashSet<string>(StringComparer.Ordinal);
        foreach (var secret in task.Secrets)
        {
            var role = secret.Role.Length > 0 ? secret.Role : taskRole;
            if (!frameworkRoles.Contains(role))
            {
                return $"task '{task.TaskId}' uses secret '{secret.Name}' of role '{role}', which is not one of the framework's roles ({string.Join(", ", frameworkRoles)})";
            }
            if (NameProblem(secret.Name) is { } bad)
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
            if (secret.File.Length > 0 && (NameProblem(secret.File) is not null || !files.Add(secret.File)))
            {
                return $"task '{task.TaskId}': secret '{secret.Name}' has file '{secret.File}', which is not a distinct plain file name (letters, digits, '.', '_', '-'; it goes in the sandbox's .secrets/)";
            }
        }
        return null;
    }

    /// <summary>The values of a task's secrets, opened with <paramref name="box"/> for its agent
    /// (null when it uses none), or why they cannot be. Precondition: <see cref="TaskProblem"/>
    /// found nothing.</summary>
    public (SecretValues? Values, string? Problem) Open(SecretBox? box, TaskInfo task, string taskRole)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (task.Secrets.Count == 0)
        {
            return (null, null);
        }
        if (box is null)
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
