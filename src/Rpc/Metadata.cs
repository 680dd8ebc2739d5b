using System.Collections;
using System.Text;

namespace Scheduler.Rpc;

/// <summary>
/// Request headers or response trailers of a call. Keys are lowercase ASCII; keys ending in
/// <c>-bin</c> carry binary values (base64 on the wire), all others ASCII text.
/// </summary>
public sealed class Metadata : IEnumerable<Metadata.Entry>
{
    public const string BinarySuffix = "-bin";

    private readonly List<Entry> _entries = [];

    public int Count => _entries.Count;

    public Entry this[int index] => _entries[index];

    public void Add(string key, string value) => _entries.Add(new Entry(key, value));

    public void Add(string key, byte[] value) => _entries.Add(new Entry(key, value));

    public void Add(Entry entry) => _entries.Add(entry);

    /// <summary>The last entry with this key, or null.</summary>
    public Entry? Get(string key)
    {
        var k = Entry.NormalizeKey(key);
        for (var i = _entries.Count - 1; i >= 0; i--)
        {
            if (_entries[i].Key == k)
            {
                return _entries[i];
            }
        }
        return null;
    }

    /// <summary>The text value of the last entry with this key, or null.</summary>
    public string? GetValue(string key) => Get(key)?.Value;

    public IEnumerable<Entry> GetAll(string key)
    {
        var k = Entry.NormalizeKey(key);
        return _entries.Where(e => e.Key == k);
    }

    public bool Remove(Entry entry) => _entries.Remove(entry);

    public IEnumerator<Entry> GetEnumerator() => _entries.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>One key and its text or binary value.</summary>
    public sealed class Entry
    {
        private readonly string? _value;
        private readonly byte[]? _bytes;

        public Entry(string key, string value)
        {
            Key = NormalizeKey(key);
            if (IsBinaryKey(Key))
            {
                throw new ArgumentException($"Metadata key '{Key}' ends with '{BinarySuffix}' and needs a binary value.", nameof(key));
            }
            foreach (var c in value)
            {
                if (c < 0x20 || c > 0x7E)
                {
                    throw new ArgumentException($"Metadata value for '{Key}' must be printable ASCII; use a '{BinarySuffix}' key for other data.", nameof(value));
                }
            }
            _value = value;
        }

        public Entry(string key, byte[] value)
        {
            Key = NormalizeKey(key);
            if (!IsBinaryKey(Key))
            {
                throw new ArgumentException($"Binary metadata key '{Key}' must end with '{BinarySuffix}'.", nameof(key));
            }
            _bytes = value;
        }

        public string Key { get; }

        public bool IsBinary => _bytes is not null;

        /// <summary>The text value; for binary entries, throws.</summary>
        public string Value => _value ?? throw new InvalidOperationException($"Metadata '{Key}' is binary; use ValueBytes.");

        public byte[] ValueBytes => _bytes ?? Encoding.ASCII.GetBytes(_value!);

        public override string ToString() => IsBinary ? $"{Key}: <{_bytes!.Length} bytes>" : $"{Key}: {_value}";

        internal static bool IsBinaryKey(string key) => key.EndsWith(BinarySuffix, StringComparison.Ordinal);

        internal static string NormalizeKey(string key)
        {
            ArgumentException.ThrowIfNullOrEmpty(key);
            var k = key.ToLowerInvariant();
            foreach (var c in k)
            {
                if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-' or '_' or '.'))
                {
                    throw new ArgumentException($"Metadata key '{key}' has an invalid character '{c}' (allowed: a-z 0-9 - _ .).", nameof(key));
                }
            }
            return k;
        }
    }
}
