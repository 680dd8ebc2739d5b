using FsCheck;
using FsCheck.Fluent;
using Scheduler.Rpc.Internal;

namespace Scheduler.Rpc.Tests;

/// <summary>Wire-format pieces: grpc-timeout, percent-encoded grpc-message, content types.</summary>
public sealed class GrpcProtocolTests
{
    [Theory]
    [InlineData("1H", 36_000_000_000L)]
    [InlineData("2M", 1_200_000_000L)]
    [InlineData("3S", 30_000_000L)]
    [InlineData("250m", 2_500_000L)]
    [InlineData("1500u", 15_000L)]
    [InlineData("99999999n", 999_999L)]
    [InlineData("0m", 0L)]
    public void Timeout_parses_every_unit(string text, long ticks)
    {
        Assert.True(GrpcProtocol.TryParseTimeout(text, out var t));
        Assert.Equal(ticks, t.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5")]
    [InlineData("m")]
    [InlineData("123456789S")]
    [InlineData("12x")]
    [InlineData("-1S")]
    [InlineData("1.5S")]
    public void Malformed_timeouts_are_rejected(string text) => Assert.False(GrpcProtocol.TryParseTimeout(text, out _));

    [Fact]
    public void Formatted_timeouts_parse_back_never_earlier_and_within_one_unit()
    {
        Prop.ForAll(ArbMap.Default.GeneratorFor<long>().Select(x => Math.Abs(x % (TimeSpan.TicksPerDay * 400)) + 1).ToArbitrary(), ticks =>
        {
            var text = GrpcProtocol.FormatTimeout(TimeSpan.FromTicks(ticks));
            Assert.True(text.Length <= 9, text);
            Assert.True(GrpcProtocol.TryParseTimeout(text, out var back), text);
            Assert.True(back.Ticks >= ticks, $"{ticks} -> {text} -> {back.Ticks}");
            // Units grow by at most 60x, and 8 digits keep the error well under 1%.
            Assert.True(back.Ticks - ticks <= Math.Max(10, ticks / 1_000_000 + TimeSpan.TicksPerHour * (text.EndsWith('H') ? 1 : 0)), $"{ticks} -> {text}");
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Status_messages_round_trip_through_percent_encoding()
    {
        Prop.ForAll<string>(s =>
        {
            s ??= "";
            // Lone surrogates cannot be UTF-8 encoded; gRPC messages are Unicode text.
            var text = new string(s.Where(c => !char.IsSurrogate(c)).ToArray());
            var encoded = GrpcProtocol.EncodeMessage(text);
            Assert.All(encoded, c => Assert.InRange(c, ' ', '~'));
            Assert.Equal(text, GrpcProtocol.DecodeMessage(encoded));
        }).QuickCheckThrowOnFailure();
        Assert.Equal("a%25b%C3%A9", GrpcProtocol.EncodeMessage("a%bé"));
        // A malformed escape is kept as text, never throws.
        Assert.Equal("100%zz", GrpcProtocol.DecodeMessage("100%zz"));
        Assert.Equal("50%", GrpcProtocol.DecodeMessage("50%"));
    }

    [Theory]
    [InlineData("application/grpc", true)]
    [InlineData("application/grpc+proto", true)]
    [InlineData("application/grpc; charset=utf-8", true)]
    [InlineData("APPLICATION/GRPC", true)]
    [InlineData("application/grpc+json", false)]
    [InlineData("application/grpc-web", false)]
    [InlineData("application/json", false)]
    [InlineData(null, false)]
    public void Content_types(string? value, bool ok) => Assert.Equal(ok, GrpcProtocol.IsGrpcContentType(value));

    [Theory]
    [InlineData(400, StatusCode.Internal)]
    [InlineData(401, StatusCode.Unauthenticated)]
    [InlineData(403, StatusCode.PermissionDenied)]
    [InlineData(404, StatusCode.Unimplemented)]
    [InlineData(429, StatusCode.Unavailable)]
    [InlineData(502, StatusCode.Unavailable)]
    [InlineData(503, StatusCode.Unavailable)]
    [InlineData(504, StatusCode.Unavailable)]
    [InlineData(500, StatusCode.Unknown)]
    public void Http_status_mapping(int http, StatusCode code) => Assert.Equal(code, GrpcProtocol.FromHttpStatus(http));
}
