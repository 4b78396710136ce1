using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace ConnMgr.Protocol.Link;

/// <summary>
/// The link handshake of spec 3.6 (the XEP-0114 component handshake): lowercase hex of
/// SHA-1(streamID || secret). Both strings are encoded as UTF-8, which is what Openfire's
/// <c>String.getBytes()</c> produces on a UTF-8 platform (the default since Java 18); the spec advises
/// an ASCII secret, for which every charset agrees.
/// </summary>
public static class HandshakeDigest
{
    /// <summary>Characters in a digest: 20 bytes of SHA-1 as hex.</summary>
    public const int Length = 2 * SHA1.HashSizeInBytes;

    /// <summary>Stream ID and secret beyond this many UTF-8 bytes are hashed from a pooled buffer.</summary>
    private const int StackLimit = 256;

    /// <summary>The text to send in <c>&lt;handshake&gt;</c>.</summary>
    public static string Compute(string streamId, string secret)
    {
        Span<byte> digest = stackalloc byte[SHA1.HashSizeInBytes];
        Hash(streamId, secret, digest);
        return Convert.ToHexStringLower(digest);
    }

    /// <summary>
    /// True when <paramref name="received"/> is the digest for this stream ID and secret. Hex case is
    /// ignored, as Openfire's <c>equalsIgnoreCase</c> does; whitespace is not (spec 3.6). The digests are
    /// compared in fixed time.
    /// </summary>
    public static bool Verify(string streamId, string secret, ReadOnlySpan<char> received)
    {
        Span<byte> presented = stackalloc byte[SHA1.HashSizeInBytes];
        if (received.Length != Length
            || Convert.FromHexString(received, presented, out _, out var written) != OperationStatus.Done
            || written != presented.Length)
        {
            return false;
        }
        Span<byte> expected = stackalloc byte[SHA1.HashSizeInBytes];
        Hash(streamId, secret, expected);
        return CryptographicOperations.FixedTimeEquals(expected, presented);
    }

    private static void Hash(string streamId, string secret, Span<byte> digest)
    {
        var length = Encoding.UTF8.GetByteCount(streamId) + Encoding.UTF8.GetByteCount(secret);
        var rented = length > StackLimit ? ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> input = rented is null ? stackalloc byte[StackLimit] : rented;
        var written = Encoding.UTF8.GetBytes(streamId, input);
        written += Encoding.UTF8.GetBytes(secret, input[written..]);
        SHA1.HashData(input[..written], digest);
        CryptographicOperations.ZeroMemory(input[..written]);
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
