using Sched.V1;
using Scheduler.Master.State;

namespace Scheduler.Master.Loop;

/// <summary>Role secrets: the operator's commands on the <see cref="SecretBook"/>, which keeps
/// them sealed (registry records, in memory alike); a launching task's values are opened for its
/// agent by Accept.</summary>
public sealed partial class MasterLoop
{
    /// <summary>Largest secret value accepted.</summary>
    public const int MaxSecretBytes = SecretBook.MaxSecretBytes;

    /// <summary>A secret name: letters, digits, <c>._-</c>, at most 128 characters.</summary>
    public static string? SecretNameProblem(string name) => SecretBook.NameProblem(name);

    public Task SetSecret(SetSecretRequest request)
    {
        if (SecretBook.Problem(request.Role, request.Name, request.Value.Length) is { } bad)
        {
            throw MasterErrors.InvalidArgument(bad);
        }
        var box = Security.Secrets ?? throw MasterErrors.FailedPrecondition("this master holds no secrets key (--secrets-key); secrets cannot be stored");
        return PersistDurably(_secrets.Set(box, request.Role, request.Name, request.Value.Span, NowSeconds));
    }

    /// <summary>The secrets of <paramref name="role"/> (all roles when empty) that <paramref name="visible"/> lets through.</summary>
    public ListSecretsResponse ListSecrets(string role, Func<string, bool> visible) => _secrets.List(role, visible);

    public Task DeleteSecret(DeleteSecretRequest request) =>
        PersistDurably(_secrets.Delete(request.Role, request.Name)
            ?? throw MasterErrors.NotFound($"role '{request.Role}' has no secret '{request.Name}'; 'schedctl secret list {request.Role}' lists them"));
}
