using System.Buffers;
using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ConnMgr.Protocol.Sasl;

/// <summary>
/// The server side of one SCRAM-SHA-1 or SCRAM-SHA-256 exchange (RFC 5802, RFC 7677) without channel
/// binding. Use one instance per authentication attempt:
/// <see cref="ReceiveClientFirst"/>, then look the user up (asynchronously if need be),
/// <see cref="CreateServerFirst"/>, then <see cref="ReceiveClientFinal"/>. Messages are the raw SASL
/// payloads, already base64-decoded from <c>&lt;auth/&gt;</c> and <c>&lt;response/&gt;</c>.
/// </summary>
/// <remarks>
/// <para>
/// Channel binding: no -PLUS mechanism is ever advertised (the edge removes them), so the gs2 flag
/// <c>n</c> (client does not support it) and <c>y</c> (client supports it but thinks we do not, which is
/// true) are accepted and <c>p=</c> is malformed for a non-PLUS mechanism (RFC 5802 section 6).
/// </para>
/// <para>
/// Authorization identity: see <see cref="SaslAuthzid.IsAcceptable"/>; <c>a=</c> with an empty name is
/// a syntax error (a saslname has at least one character), the empty gs2 field (<c>n,,</c>) is "none".
/// </para>
/// <para>
/// Failures: syntax errors, including an unknown mandatory extension (<c>m=</c>), give
/// malformed-request; a wrong nonce, channel binding or proof, and any unknown user, give
/// not-authorized; a refused authzid gives invalid-authzid. The reason is in <see cref="Failure"/>.
/// </para>
/// </remarks>
public sealed class ScramServer
{
    private enum State : byte { AwaitingClientFirst, AwaitingCredential, AwaitingClientFinal, Finished }

    private readonly ScramHash _hash;
    private readonly ScramServerOptions _options;
    private readonly string? _fixedServerNonce;
    private State _state;

    // From client-first: the bare message (start of AuthMessage), where its nonce sits, and the base64
    // of its gs2 header, which c= must repeat (RFC 5802 section 5.1, "c").
    private byte[]? _clientFirstBare;
    private int _clientNonceOffset;
    private int _clientNonceLength;
    private byte[]? _expectedChannelBinding;

    // client-first-message-bare "," server-first-message ",": the AuthMessage up to client-final.
    private byte[]? _authMessagePrefix;
    private int _nonceOffset;
    private int _nonceLength;
    private ScramCredential? _credential;
    private bool _unknownUser;

    public ScramServer(ScramHash hash, ScramServerOptions? options = null)
    {
        _hash = hash;
        _options = options ?? ScramServerOptions.Default;
    }

    /// <summary>For the RFC test vectors: the server part of the nonce is given instead of drawn.</summary>
    internal ScramServer(ScramHash hash, ScramServerOptions? options, string serverNonce) : this(hash, options)
        => _fixedServerNonce = serverNonce;

    public ScramHash Hash => _hash;

    /// <summary>The SASLprep'd user name from client-first, once it parsed.</summary>
    public string? Username { get; private set; }

    /// <summary>Why the exchange failed; meaningful after a step returned <see cref="SaslResult.Failure"/>.</summary>
    public SaslFailure Failure { get; private set; }

    /// <summary>
    /// Parses client-first-message. On <see cref="SaslResult.Continue"/>, look up
    /// <paramref name="username"/>'s credential for this hash and call <see cref="CreateServerFirst"/>.
    /// </summary>
    public SaslResult ReceiveClientFirst(ReadOnlySpan<byte> message, out string? username)
    {
        ExpectState(State.AwaitingClientFirst);
        username = null;
        if (message.Length > ScramSyntax.MaxMessageLength || message.Length < 3)
        {
            return Fail(SaslFailure.MalformedRequest);
        }

        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        if (message[0] is not ((byte)'n' or (byte)'y') || message[1] != ',')
        {
            return Fail(SaslFailure.MalformedRequest);
        }
        var afterFlag = message[2..];
        var authzidEnd = afterFlag.IndexOf((byte)',');
        if (authzidEnd < 0)
        {
            return Fail(SaslFailure.MalformedRequest);
        }
        string? authzid = null;
        if (authzidEnd > 0
            && (!ScramSyntax.TryGetValue(afterFlag[..authzidEnd], 'a', out var authzidValue)
                || !ScramSyntax.TryDecodeSaslName(authzidValue, out authzid)))
        {
            return Fail(SaslFailure.MalformedRequest);
        }
        var gs2HeaderLength = 2 + authzidEnd + 1;

        // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        var fields = new ScramSyntax.FieldReader(message[gs2HeaderLength..]);
        if (!fields.TryNext(out var field)
            || !ScramSyntax.TryGetValue(field, 'n', out var usernameValue)
            || !ScramSyntax.TryDecodeSaslName(usernameValue, out var rawUsername)
            || !fields.TryNext(out field)
            || !ScramSyntax.TryGetValue(field, 'r', out var clientNonce)
            || !ScramSyntax.IsPrintable(clientNonce))
        {
            return Fail(SaslFailure.MalformedRequest);
        }
        while (fields.TryNext(out field))
        {
            if (!ScramSyntax.IsIgnorableExtension(field))
            {
                return Fail(SaslFailure.MalformedRequest);
            }
        }

        // RFC 5802 section 5.1: a name that fails SASLprep or prepares to nothing aborts the exchange.
        if (!SaslPrep.TryNormalize(rawUsername, out var prepared))
        {
            return Fail(SaslFailure.MalformedRequest);
        }
        Username = prepared;
        if (!SaslAuthzid.IsAcceptable(authzid, prepared, _options.Domain))
        {
            return Fail(SaslFailure.InvalidAuthzid);
        }

        _clientFirstBare = message[gs2HeaderLength..].ToArray();
        _clientNonceOffset = "n="u8.Length + usernameValue.Length + ",r="u8.Length;
        _clientNonceLength = clientNonce.Length;
        _expectedChannelBinding = new byte[Base64.GetMaxEncodedToUtf8Length(gs2HeaderLength)];
        Base64.EncodeToUtf8(message[..gs2HeaderLength], _expectedChannelBinding, out _, out _);
        _state = State.AwaitingCredential;
        username = prepared;
        return SaslResult.Continue;
    }

    /// <summary>
    /// Builds server-first-message from the user's stored credential, or from a fake one when the user
    /// is unknown (<paramref name="credential"/> null): same shape, a salt that is stable per name, and a
    /// proof that can never verify, so a prober learns nothing before the final not-authorized.
    /// </summary>
    public byte[] CreateServerFirst(ScramCredential? credential)
    {
        ExpectState(State.AwaitingCredential);
        if (credential is null)
        {
            credential = FakeCredential(Username!);
            _unknownUser = true;
        }
        else if (credential.Hash != _hash || credential.Salt.Length == 0 || credential.Iterations <= 0
            || credential.StoredKey.Length != _hash.HashLength() || credential.ServerKey.Length != _hash.HashLength())
        {
            throw new ArgumentException($"The credential is not a usable {_hash.MechanismName()} credential.", nameof(credential));
        }
        _credential = credential;

        // server-first-message = nonce "," salt "," iteration-count
        Span<byte> iterations = stackalloc byte[10];
        credential.Iterations.TryFormat(iterations, out var iterationsLength, provider: CultureInfo.InvariantCulture);
        iterations = iterations[..iterationsLength];
        Span<byte> serverNonce = stackalloc byte[_fixedServerNonce?.Length ?? ScramSyntax.NonceLength];
        if (_fixedServerNonce is null)
        {
            ScramSyntax.WriteNonce(serverNonce);
        }
        else
        {
            Encoding.ASCII.GetBytes(_fixedServerNonce, serverNonce);
        }
        var bare = _clientFirstBare.AsSpan();
        var clientNonce = bare.Slice(_clientNonceOffset, _clientNonceLength);
        var serverFirstLength = "r="u8.Length + clientNonce.Length + serverNonce.Length
            + ",s="u8.Length + Base64.GetMaxEncodedToUtf8Length(credential.Salt.Length)
            + ",i="u8.Length + iterations.Length;

        var prefix = new byte[bare.Length + 1 + serverFirstLength + 1];
        bare.CopyTo(prefix);
        var position = bare.Length;
        prefix[position++] = (byte)',';
        var serverFirstStart = position;
        Append(prefix, ref position, "r="u8);
        _nonceOffset = position;
        Append(prefix, ref position, clientNonce);
        Append(prefix, ref position, serverNonce);
        _nonceLength = position - _nonceOffset;
        Append(prefix, ref position, ",s="u8);
        Base64.EncodeToUtf8(credential.Salt, prefix.AsSpan(position), out _, out var saltLength);
        position += saltLength;
        Append(prefix, ref position, ",i="u8);
        Append(prefix, ref position, iterations);
        prefix[position] = (byte)',';

        _authMessagePrefix = prefix;
        _clientFirstBare = null;
        _state = State.AwaitingClientFinal;
        return prefix.AsSpan(serverFirstStart, position - serverFirstStart).ToArray();
    }

    /// <summary>
    /// Checks client-final-message. On <see cref="SaslResult.Success"/>, <paramref name="serverFinal"/> is
    /// the <c>v=</c> message to send as the additional data of <c>&lt;success/&gt;</c>.
    /// </summary>
    public SaslResult ReceiveClientFinal(ReadOnlySpan<byte> message, out byte[]? serverFinal)
    {
        ExpectState(State.AwaitingClientFinal);
        serverFinal = null;
        var credential = _credential!;
        var hashLength = _hash.HashLength();

        // client-final-message = channel-binding "," nonce ["," extensions] "," proof
        var proofStart = message.LastIndexOf((byte)',');
        if (message.Length > ScramSyntax.MaxMessageLength || proofStart < 0)
        {
            return Fail(SaslFailure.MalformedRequest);
        }
        var withoutProof = message[..proofStart];
        Span<byte> proof = stackalloc byte[ScramSyntax.MaxHashLength];
        if (!ScramSyntax.TryGetValue(message[(proofStart + 1)..], 'p', out var proofValue)
            || proofValue.Length != Base64.GetMaxEncodedToUtf8Length(hashLength)
            || !ScramSyntax.TryDecodeBase64(proofValue, proof, out var proofLength)
            || proofLength != hashLength)
        {
            return Fail(SaslFailure.MalformedRequest);
        }
        proof = proof[..hashLength];

        var fields = new ScramSyntax.FieldReader(withoutProof);
        if (!fields.TryNext(out var field)
            || !ScramSyntax.TryGetValue(field, 'c', out var channelBinding)
            || !ScramSyntax.IsStrictBase64(channelBinding)
            || !fields.TryNext(out field)
            || !ScramSyntax.TryGetValue(field, 'r', out var nonce)
            || !ScramSyntax.IsPrintable(nonce))
        {
            return Fail(SaslFailure.MalformedRequest);
        }
        while (fields.TryNext(out field))
        {
            if (!ScramSyntax.IsIgnorableExtension(field))
            {
                return Fail(SaslFailure.MalformedRequest);
            }
        }

        if (!channelBinding.SequenceEqual(_expectedChannelBinding) || !nonce.SequenceEqual(_authMessagePrefix.AsSpan(_nonceOffset, _nonceLength)))
        {
            return Fail(SaslFailure.NotAuthorized);
        }

        // AuthMessage = client-first-message-bare "," server-first-message "," client-final-message-without-proof
        var prefix = _authMessagePrefix!;
        var rented = ArrayPool<byte>.Shared.Rent(prefix.Length + withoutProof.Length);
        try
        {
            prefix.CopyTo(rented, 0);
            withoutProof.CopyTo(rented.AsSpan(prefix.Length));
            var authMessage = rented.AsSpan(0, prefix.Length + withoutProof.Length);

            // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); it is right if H(ClientKey) = StoredKey.
            Span<byte> clientKey = stackalloc byte[ScramSyntax.MaxHashLength];
            clientKey = clientKey[..ScramCredential.Hmac(_hash, credential.StoredKey, authMessage, clientKey)];
            for (var i = 0; i < clientKey.Length; i++)
            {
                clientKey[i] ^= proof[i];
            }
            Span<byte> storedKey = stackalloc byte[ScramSyntax.MaxHashLength];
            storedKey = storedKey[..ScramCredential.Digest(_hash, clientKey, storedKey)];
            var proofMatches = CryptographicOperations.FixedTimeEquals(storedKey, credential.StoredKey);
            CryptographicOperations.ZeroMemory(clientKey);

            // Computed for unknown users too, so that both paths cost the same.
            Span<byte> serverSignature = stackalloc byte[ScramSyntax.MaxHashLength];
            serverSignature = serverSignature[..ScramCredential.Hmac(_hash, credential.ServerKey, authMessage, serverSignature)];
            if (!proofMatches || _unknownUser)
            {
                return Fail(SaslFailure.NotAuthorized);
            }

            var final = new byte[2 + Base64.GetMaxEncodedToUtf8Length(hashLength)];
            "v="u8.CopyTo(final);
            Base64.EncodeToUtf8(serverSignature, final.AsSpan(2), out _, out _);
            serverFinal = final;
            Finish();
            return SaslResult.Success;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private ScramCredential FakeCredential(string username)
    {
        // Keyed by hash too, so an unknown name shows different salts for SHA-1 and SHA-256, as real ones do.
        var input = new byte[1 + Encoding.UTF8.GetByteCount(username)];
        input[0] = (byte)_hash;
        Encoding.UTF8.GetBytes(username, input.AsSpan(1));
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        HMACSHA256.HashData(_options.EffectiveUnknownUserKey, input, mac);
        var salt = mac[..ScramCredential.DefaultSaltLength].ToArray();
        var length = _hash.HashLength();
        return new ScramCredential(_hash, salt, _options.UnknownUserIterations,
            RandomNumberGenerator.GetBytes(length), RandomNumberGenerator.GetBytes(length));
    }

    private static void Append(byte[] destination, ref int position, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(destination.AsSpan(position));
        position += bytes.Length;
    }

    private SaslResult Fail(SaslFailure failure)
    {
        Failure = failure;
        Finish();
        return SaslResult.Failure;
    }

    private void Finish()
    {
        _state = State.Finished;
        _clientFirstBare = null;
        _expectedChannelBinding = null;
        _authMessagePrefix = null;
        _credential = null;
    }

    private void ExpectState(State expected)
    {
        if (_state != expected)
        {
            ThrowOutOfOrder(expected);
        }
    }

    private static void ThrowOutOfOrder(State expected)
        => throw new InvalidOperationException($"SCRAM step called out of order: the exchange is not in state {expected}.");
}
