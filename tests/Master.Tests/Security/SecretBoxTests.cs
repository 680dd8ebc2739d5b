using System.Security.Cryptography;
using System.Text;
using Scheduler.Security;
using Xunit;

namespace Scheduler.Master.Tests.Security;

public class SecretBoxTests
{
    [Fact]
    public void A_sealed_secret_opens_only_under_its_key_role_and_name_and_unaltered()
    {
        using var box = SecretBox.Create();
        using var other = SecretBox.Create();
        var (nonce, ciphertext, tag) = box.Seal("eng/db", "password", Encoding.UTF8.GetBytes("hunter2"));
        Assert.DoesNotContain("hunter2", Encoding.UTF8.GetString(ciphertext), StringComparison.Ordinal);
        Assert.Equal("hunter2", Encoding.UTF8.GetString(box.Open("eng/db", "password", nonce, ciphertext, tag)));
        Assert.ThrowsAny<CryptographicException>(() => other.Open("eng/db", "password", nonce, ciphertext, tag));
        Assert.ThrowsAny<CryptographicException>(() => box.Open("eng/web", "password", nonce, ciphertext, tag));
        Assert.ThrowsAny<CryptographicException>(() => box.Open("eng/db", "token", nonce, ciphertext, tag));
        ciphertext[0] ^= 1;
        Assert.ThrowsAny<CryptographicException>(() => box.Open("eng/db", "password", nonce, ciphertext, tag));
        var (nonce2, _, _) = box.Seal("eng/db", "password", Encoding.UTF8.GetBytes("hunter2"));
        Assert.NotEqual(nonce, nonce2);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void The_key_file_is_created_private_and_read_back()
    {
        var dir = Directory.CreateTempSubdirectory("sched-secretkey-test-");
        try
        {
            var path = Path.Combine(dir.FullName, "secrets.key");
            byte[] nonce, ciphertext, tag;
            using (var box = SecretBox.LoadOrCreate(path))
            {
                (nonce, ciphertext, tag) = box.Seal("r", "n", [1, 2, 3]);
            }
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            using (var again = SecretBox.LoadOrCreate(path))
            {
                Assert.Equal([1, 2, 3], again.Open("r", "n", nonce, ciphertext, tag));
            }
            File.WriteAllText(path, "short");
            Assert.Contains("not 32 bytes", Assert.Throws<InvalidOperationException>(() => SecretBox.LoadOrCreate(path)).Message, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
