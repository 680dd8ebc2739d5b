using System.IO.Compression;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Net.Compression;
using Microsoft.Extensions.Options;

namespace Scheduler.Hosting;

/// <summary>A compression provider whose decompression answers a message that is not what its
/// <c>grpc-encoding</c> says (not gzip, say) with INVALID_ARGUMENT naming the encoding, where
/// Grpc.AspNetCore would answer UNKNOWN as for a handler exception.</summary>
internal sealed class StrictDecompression(ICompressionProvider inner) : ICompressionProvider
{
    public string EncodingName => inner.EncodingName;

    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) => inner.CreateCompressionStream(stream, compressionLevel);

    public Stream CreateDecompressionStream(Stream stream) => new Checked(inner.CreateDecompressionStream(stream), inner.EncodingName);

    /// <summary>Wraps every compression provider of the gRPC service options, the defaults included
    /// (run after Grpc.AspNetCore's own setup has added them).</summary>
    internal sealed class Setup : IPostConfigureOptions<GrpcServiceOptions>
    {
        public void PostConfigure(string? name, GrpcServiceOptions options)
            => options.CompressionProviders = [.. options.CompressionProviders.Select(p => p as StrictDecompression ?? new StrictDecompression(p))];
    }

    private sealed class Checked(Stream inner, string encoding) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Guard(() => inner.Read(buffer, offset, count));

        public override int Read(Span<byte> buffer)
        {
            try
            {
                return inner.Read(buffer);
            }
            catch (InvalidDataException e)
            {
                throw Refusal(e);
            }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidDataException e)
            {
                throw Refusal(e);
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Guard(Func<int> read)
        {
            try
            {
                return read();
            }
            catch (InvalidDataException e)
            {
                throw Refusal(e);
            }
        }

        private RpcException Refusal(InvalidDataException e)
            => new(new Status(StatusCode.InvalidArgument, $"cannot decompress the request: it is not valid {encoding} ({e.Message}); send it as the grpc-encoding header says, or uncompressed"));

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
