using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Scheduler.Rpc.Tests;

/// <summary>
/// A test-only "message" whose serialised form is exactly the given bytes, to put arbitrary
/// (also invalid) payloads on the wire through the real client. Sending only: parsing keeps the
/// bytes undecoded.
/// </summary>
public sealed class BytesMessage : IMessage<BytesMessage>, IBufferMessage
{
    public static readonly MessageParser<BytesMessage> Parser = new(() => new BytesMessage([]));

    public BytesMessage(byte[] bytes)
    {
        Bytes = bytes;
    }

    public byte[] Bytes { get; private set; }

    public MessageDescriptor Descriptor => throw new NotSupportedException("BytesMessage has no descriptor.");

    public int CalculateSize() => Bytes.Length;

    public BytesMessage Clone() => new((byte[])Bytes.Clone());

    public bool Equals(BytesMessage? other) => other is not null && Bytes.AsSpan().SequenceEqual(other.Bytes);

    public override bool Equals(object? obj) => Equals(obj as BytesMessage);

    public override int GetHashCode() => Bytes.Length;

    public void MergeFrom(BytesMessage message) => Bytes = message.Bytes;

    public void MergeFrom(CodedInputStream input) => throw new NotSupportedException();

    public void WriteTo(CodedOutputStream output)
    {
        foreach (var b in Bytes)
        {
            output.WriteRawTag(b);
        }
    }

    void IBufferMessage.InternalMergeFrom(ref ParseContext ctx)
    {
        var bytes = new List<byte>();
        while (!ctx.ReadTag().Equals(0u))
        {
            bytes.Add(0);
        }
        Bytes = [.. bytes];
    }

    void IBufferMessage.InternalWriteTo(ref WriteContext ctx)
    {
        foreach (var b in Bytes)
        {
            ctx.WriteRawTag(b);
        }
    }
}
