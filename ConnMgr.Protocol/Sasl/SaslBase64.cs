using System.Buffers;
using System.Buffers.Text;

namespace ConnMgr.Protocol.Sasl;

/// <summary>
/// The base64 text of <c>&lt;auth/&gt;</c>, <c>&lt;challenge/&gt;</c>, <c>&lt;response/&gt;</c> and
/// <c>&lt;success/&gt;</c> (RFC 6120 section 6.4). An empty element carries no data; a single <c>=</c>
/// carries data of length zero (sections 6.4.2 and 6.4.6). The text must be strict RFC 4648 base64
/// without whitespace; anything else is incorrect-encoding (section 6.5.2).
/// </summary>
public static class SaslBase64
{
    /// <summary>
    /// Decodes element text (UTF-8 bytes, already free of XML escapes) into a buffer rented from
    /// <see cref="ArrayPool{T}.Shared"/>. False on bad base64. Dispose the payload to return the buffer.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> text, out SaslPayload payload)
    {
        payload = default;
        if (text.IsEmpty)
        {
            return true;
        }
        if (text.Length == 1 && text[0] == '=')
        {
            payload = new SaslPayload(null, 0, isPresent: true);
            return true;
        }
        if (!ScramSyntax.IsStrictBase64(text))
        {
            return false;
        }
        var buffer = ArrayPool<byte>.Shared.Rent(Base64.GetMaxDecodedFromUtf8Length(text.Length));
        if (Base64.DecodeFromUtf8(text, buffer, out _, out var written) != OperationStatus.Done)
        {
            ArrayPool<byte>.Shared.Return(buffer);
            return false;
        }
        payload = new SaslPayload(buffer, written, isPresent: true);
        return true;
    }

    /// <summary>Length of the element text for <paramref name="dataLength"/> bytes of data (1 for empty: "=").</summary>
    public static int GetEncodedLength(int dataLength) => dataLength == 0 ? 1 : Base64.GetMaxEncodedToUtf8Length(dataLength);

    /// <summary>Writes the element text for <paramref name="data"/>: its base64, or "=" when it is empty.</summary>
    public static void Encode(ReadOnlySpan<byte> data, IBufferWriter<byte> writer)
    {
        var length = GetEncodedLength(data.Length);
        var destination = writer.GetSpan(length);
        if (data.IsEmpty)
        {
            destination[0] = (byte)'=';
        }
        else
        {
            Base64.EncodeToUtf8(data, destination, out _, out _);
        }
        writer.Advance(length);
    }
}

/// <summary>
/// Decoded SASL data in a pooled buffer. A <c>ref struct</c> so that it cannot outlive the step that
/// reads it; <c>using</c> it returns the buffer.
/// </summary>
public ref struct SaslPayload
{
    private byte[]? _buffer;
    private readonly int _length;

    internal SaslPayload(byte[]? buffer, int length, bool isPresent)
    {
        _buffer = buffer;
        _length = length;
        IsPresent = isPresent;
    }

    /// <summary>False when the element was empty: no initial response in <c>&lt;auth/&gt;</c>.</summary>
    public readonly bool IsPresent { get; }

    public readonly ReadOnlySpan<byte> Span => _buffer is null ? default : _buffer.AsSpan(0, _length);

    public void Dispose()
    {
        if (_buffer is not null)
        {
            // Cleared: the data may be a PLAIN password.
            ArrayPool<byte>.Shared.Return(_buffer, clearArray: true);
            _buffer = null;
        }
    }
}
