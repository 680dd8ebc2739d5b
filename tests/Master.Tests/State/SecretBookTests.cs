using Google.Protobuf;
using Sched.V1;
using Scheduler.Master.Registry;
using Scheduler.Master.State;
using Scheduler.Security;
using Xunit;

namespace Scheduler.Master.Tests.State;

/// <summary>The secret book on its own: values are kept sealed and listed without them, opened
/// only with the key that sealed them, and a task's references are checked without opening anything.</summary>
public sealed class SecretBookTests
{
    private static TaskInfo TaskUsing(params SecretRef[] secrets)
    {
        var task = new TaskInfo { TaskId = "t1", Name = "t1" };
        task.Secrets.Add(secrets);
        return task;
    }

    [Fact]
    public void A_set_secret_is_held_sealed_listed_without_its_value_and_opened_for_a_task()
    {
        using var box = SecretBox.Create();
        var book = new SecretBook();
        var write = book.Set(box, "eng", "db-password", "hunter2"u8, now: 12);

        var record = SecretRecord.Parser.ParseFrom(write.Value);
        Assert.DoesNotContain("hunter2", record.Ciphertext.ToStringUtf8(), StringComparison.Ordinal);
        var listed = Assert.Single(book.List("", _ => true).Secrets);
        Assert.Equal(("eng", "db-password", 12.0, 7u), (listed.Role, listed.Name, listed.UpdatedTime, listed.Size));
        Assert.Empty(book.List("other", _ => true).Secrets);
        Assert.Empty(book.List("", role => role != "eng").Secrets);

        var task = TaskUsing(new SecretRef { Name = "db-password", Env = "DB_PASSWORD" });
        Assert.Null(book.TaskProblem(["eng"], task, "eng"));
        var (values, problem) = book.Open(box, task, "eng");
        Assert.Null(problem);
        Assert.Equal("hunter2", Assert.Single(values!.Values).Value.ToStringUtf8());
    }

    [Fact]
    public void A_secret_sealed_under_another_key_is_refused_with_what_to_do()
    {
        using var sealer = SecretBox.Create();
        using var other = SecretBox.Create();
        var book = new SecretBook();
        book.Set(sealer, "eng", "token", "x"u8, now: 1);
        var task = TaskUsing(new SecretRef { Name = "token", File = "token" });

        var (values, problem) = book.Open(other, task, "eng");

        Assert.Null(values);
        Assert.Contains("must share one --secrets-key", problem, StringComparison.Ordinal);
        Assert.Contains("--secrets-key", book.Open(null, task, "eng").Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_task_may_use_only_existing_secrets_of_its_frameworks_roles_under_distinct_names()
    {
        using var box = SecretBox.Create();
        var book = new SecretBook();
        book.Set(box, "eng", "a", "1"u8, now: 1);
        book.Set(box, "ops", "b", "2"u8, now: 1);

        Assert.Contains("not one of the framework's roles", book.TaskProblem(["eng"], TaskUsing(new SecretRef { Role = "ops", Name = "b", Env = "B" }), "eng"), StringComparison.Ordinal);
        Assert.Contains("has none of that name", book.TaskProblem(["eng"], TaskUsing(new SecretRef { Name = "missing", Env = "M" }), "eng"), StringComparison.Ordinal);
        Assert.Contains("names neither env nor file", book.TaskProblem(["eng"], TaskUsing(new SecretRef { Name = "a" }), "eng"), StringComparison.Ordinal);
        Assert.Contains("not a distinct variable name", book.TaskProblem(["eng"], TaskUsing(
            new SecretRef { Name = "a", Env = "X" }, new SecretRef { Name = "a", Env = "X" }), "eng"), StringComparison.Ordinal);
        Assert.Null(book.TaskProblem(["eng", "ops"], TaskUsing(new SecretRef { Role = "ops", Name = "b", File = "b" }), "eng"));
    }

    [Fact]
    public void Deleting_removes_the_secret_and_an_unknown_one_gives_no_write()
    {
        using var box = SecretBox.Create();
        var book = new SecretBook();
        book.Set(box, "eng", "a", "1"u8, now: 1);

        Assert.Null(book.Delete("eng", "nope"));
        Assert.Null(book.Delete("not a role!", "a"));
        var write = book.Delete("eng", "a");

        Assert.Equal(RegistryRecords.SecretKey("eng", "a"), Assert.NotNull(write).Key);
        Assert.Null(write.Value.Value); // a delete
        Assert.Empty(book.List("", _ => true).Secrets);
        Assert.Null(book.Delete("eng", "a"));
    }

    [Fact]
    public void Secrets_to_set_are_checked_for_role_name_and_size()
    {
        Assert.Contains("invalid role", SecretBook.Problem("", "a", 1), StringComparison.Ordinal);
        Assert.Contains("is not a secret name", SecretBook.Problem("eng", "..", 1), StringComparison.Ordinal);
        Assert.Contains("got 0 bytes", SecretBook.Problem("eng", "a", 0), StringComparison.Ordinal);
        Assert.Contains($"got {SecretBook.MaxSecretBytes + 1} bytes", SecretBook.Problem("eng", "a", SecretBook.MaxSecretBytes + 1), StringComparison.Ordinal);
        Assert.Null(SecretBook.Problem("eng", "a", SecretBook.MaxSecretBytes));
    }
}
