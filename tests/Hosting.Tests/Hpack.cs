using System.Text;

namespace Scheduler.Hosting.Tests;

/// <summary>
/// Just enough HPACK (RFC 7541) for a raw HTTP/2 test client: encodes request headers as literals
/// without indexing, and decodes any header block without Huffman-coded strings (the peer here is
/// Kestrel, whose encoder never Huffman-codes) with the static and dynamic tables.
/// </summary>
public sealed class Hpack
{
    private static readonly (string Name, string Value)[] Static =
    [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
        ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
        ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
        ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""),
        ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
        ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""),
        ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
        ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ];

    private readonly List<(string Name, string Value)> _dynamic = [];
    private int _dynamicSize;
    private int _maxSize = 4096;

    /// <summary>A header block of literal fields without indexing (no state on either side).</summary>
    public static byte[] Encode(IEnumerable<(string Name, string Value)> headers)
    {
        var block = new List<byte>();
        foreach (var (name, value) in headers)
        {
            block.Add(0);
            WriteString(block, name);
            WriteString(block, value);
        }
        return [.. block];
    }

    /// <summary>Decodes one complete header block (HEADERS plus CONTINUATION payloads).</summary>
    /// <exception cref="InvalidDataException">On a malformed block or a Huffman-coded string.</exception>
    public List<(string Name, string Value)> Decode(ReadOnlySpan<byte> block)
    {
        var headers = new List<(string, string)>();
        var i = 0;
        while (i < block.Length)
        {
            var b = block[i];
            if ((b & 0x80) != 0)
            {
                headers.Add(Entry(ReadInt(block, ref i, 7)));
            }
            else if ((b & 0xC0) == 0x40)
            {
                var field = ReadLiteral(block, ref i, 6);
                headers.Add(field);
                Insert(field);
            }
            else if ((b & 0xE0) == 0x20)
            {
                _maxSize = ReadInt(block, ref i, 5);
                Evict(0);
            }
            else
            {
                headers.Add(ReadLiteral(block, ref i, 4));
            }
        }
        return headers;
    }

    private (string, string) ReadLiteral(ReadOnlySpan<byte> block, ref int i, int prefix)
    {
        var index = ReadInt(block, ref i, prefix);
        var name = index == 0 ? ReadString(block, ref i) : Entry(index).Name;
        return (name, ReadString(block, ref i));
    }

    private (string Name, string Value) Entry(int index)
    {
        if (index >= 1 && index <= Static.Length)
        {
            return Static[index - 1];
        }
        var d = index - Static.Length - 1;
        return d >= 0 && d < _dynamic.Count ? _dynamic[d] : throw new InvalidDataException($"HPACK index {index} is not in the tables.");
    }

    private void Insert((string Name, string Value) field)
    {
        var size = field.Name.Length + field.Value.Length + 32;
        Evict(size);
        if (size <= _maxSize)
        {
            _dynamic.Insert(0, field);
            _dynamicSize += size;
        }
    }

    private void Evict(int room)
    {
        while (_dynamic.Count > 0 && _dynamicSize + room > _maxSize)
        {
            var last = _dynamic[^1];
            _dynamic.RemoveAt(_dynamic.Count - 1);
            _dynamicSize -= last.Name.Length + last.Value.Length + 32;
        }
    }

    private static int ReadInt(ReadOnlySpan<byte> block, ref int i, int prefix)
    {
        var max = (1 << prefix) - 1;
        var value = block[i++] & max;
        if (value < max)
        {
            return value;
        }
        for (var shift = 0; ; shift += 7)
        {
            if (i >= block.Length || shift > 21)
            {
                throw new InvalidDataException("HPACK integer runs past the block.");
            }
            var b = block[i++];
            value += (b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }
    }

    private static string ReadString(ReadOnlySpan<byte> block, ref int i)
    {
        if ((block[i] & 0x80) != 0)
        {
            throw new InvalidDataException("Huffman-coded HPACK string: this test decoder does not implement Huffman.");
        }
        var length = ReadInt(block, ref i, 7);
        var s = Encoding.Latin1.GetString(block.Slice(i, length));
        i += length;
        return s;
    }

    private static void WriteString(List<byte> block, string s)
    {
        var bytes = Encoding.Latin1.GetBytes(s);
        WriteInt(block, bytes.Length, 7, 0);
        block.AddRange(bytes);
    }

    private static void WriteInt(List<byte> block, int value, int prefix, byte flags)
    {
        var max = (1 << prefix) - 1;
        if (value < max)
        {
            block.Add((byte)(flags | value));
            return;
        }
        block.Add((byte)(flags | max));
        value -= max;
        while (value >= 0x80)
        {
            block.Add((byte)((value & 0x7F) | 0x80));
            value >>= 7;
        }
        block.Add((byte)value);
    }
}
