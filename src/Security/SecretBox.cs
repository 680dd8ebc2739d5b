using System.Security.Cryptography;
using System.Text;

namespace Scheduler.Security;

/// <summary>
/// Encrypts role secrets with AES-256-GCM under a key file the masters hold (32 random bytes,
/// base64, mode 0600; created when missing). The role and the name are the associated data: a
/// ciphertext copied to another secret does not decrypt.
/// </summary>
public sealed class SecretBox : IDisposable
{
    public const int NonceSize = 12;
    public const int TagSize = 16;
    private readonly AesGcm _aes;

    private SecretBox(byte[] key, string? path)
    {
        _aes = new AesGcm(key, TagSize);
        Path = path;
    }

    public string? Path { get; }

    /// <summary>A box with a new random key, in memory.</summary>
    public static SecretBox Create() => new(RandomNumberGenerator.GetBytes(32), null);

    /// <summary>Reads the key at <paramref name="path"/>, or creates it (mode 0600) when missing.
    /// Refuses a key file others may read, or one that is not 32 bytes of base64.</summary>
    public static SecretBox LoadOrCreate(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
        {
            var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (dir is not null)
            {
                Directory.CreateDirectory(dir);
            }
            var key = RandomNumberGenerator.GetBytes(32);
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }
            using (var file = new FileStream(path, options))
            using (var writer = new StreamWriter(file))
            {
                writer.Write(Convert.ToBase64String(key) + "\n");
            }
            return new SecretBox(key, path);
        }
        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(path);
            if ((mode & (UnixFileMode.GroupRead | UnixFileMode.OtherRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
            {
                throw new InvalidOperationException($"the secrets key {path} may be read by others than its owner (mode {Convert.ToString((int)mode, 8)}); run 'chmod 600 {path}'");
            }
        }
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(File.ReadAllText(path).Trim());
        }
        catch (FormatException)
        {
            bytes = [];
        }
        if (bytes.Length != 32)
        {
            throw new InvalidOperationException($"the secrets key {path} is not 32 bytes in base64; give the cluster's key (every master needs the same one), or remove it to have a new one made (existing secrets are then lost)");
        }
        return new SecretBox(bytes, path);
    }

    /// <summary>Encrypts <paramref name="value"/> as the secret <paramref name="name"/> of <paramref name="role"/>.</summary>
    public (byte[] Nonce, byte[] Ciphertext, byte[] Tag) Seal(string role, string name, ReadOnlySpan<byte> value)
    {
        var nonce = RandomNumberGenerator.GetBytes(NonceSize);
        var ciphertext = new byte[value.Length];
        var tag = new byte[TagSize];
        _aes.Encrypt(nonce, value, ciphertext, tag, AssociatedData(role, name));
        return (nonce, ciphertext, tag);
    }

    /// <summary>Decrypts a sealed secret; throws <see cref="CryptographicException"/> when it was
    /// sealed under another key or for another role or name, or was altered.</summary>
    public byte[] Open(string role, string name, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag)
    {
        var value = new byte[ciphertext.Length];
        _aes.Decrypt(nonce, ciphertext, tag, value, AssociatedData(role, name));
        return value;
    }

    private static byte[] AssociatedData(string role, string name) => Encoding.UTF8.GetBytes($"sched-secret\0{role}\0{name}");

    public void Dispose() => _aes.Dispose();
}
