using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace ConnMgr.Protocol.Sasl;

/// <summary>
/// The client side of one SCRAM exchange without channel binding (gs2 header <c>n,,</c>), for the load
/// generator and the tests: <see cref="ClientFirst"/>, <see cref="ReceiveServerFirst"/>,
/// <see cref="VerifyServerFinal"/>. Messages are raw SASL payloads (not base64).
/// </summary>
public sealed class ScramClient
{
    /// <summary>
    /// Highest iteration count accepted from a server, so that a hostile one cannot make the client
    /// spin for minutes; 1,000,000 is 244 times the RFC 7677 minimum of 4096.
    /// </summary>
    public const int MaxIterations = 1_000_000;

    /// <summary>base64("n,,"), the channel-binding attribute when no binding is used (RFC 5802 section 5.1).</summary>
    private static ReadOnlySpan<byte> ChannelBindingNone => "c=biws,r="u8;

    private enum State : byte { Initial, AwaitingServerFirst, AwaitingServerFinal, Finished }

    private readonly ScramHash _hash;
    private readonly string _password;
    private readonly byte[] _username;
    private readonly byte[] _clientNonce;
    private readonly ScramSaltedPasswordCache? _cache;
    private State _state;
    private byte[]? _clientFirstBare;
    private byte[]? _expectedServerSignature;

    /// <summary>
    /// <paramref name="username"/> and <paramref name="password"/> are SASLprep'd here (RFC 5802 section
    /// 5.1); an <see cref="ArgumentException"/> says which one cannot be. With a <paramref name="cache"/>,
    /// SaltedPassword is derived once per (password, salt, iteration count), as real clients keep it.
    /// </summary>
    public ScramClient(ScramHash hash, string username, string password, ScramSaltedPasswordCache? cache = null)
    {
        if (!SaslPrep.TryNormalize(username, out var preparedUsername))
        {
            throw new ArgumentException("The user name is empty or not valid under SASLprep (RFC 4013).", nameof(username));
        }
        if (!SaslPrep.TryNormalize(password, out var preparedPassword))
        {
            throw new ArgumentException("The password is empty or not valid under SASLprep (RFC 4013).", nameof(password));
        }
        _hash = hash;
        _username = ScramSyntax.EncodeSaslName(preparedUsername);
        _password = preparedPassword;
        _cache = cache;
        _clientNonce = new byte[ScramSyntax.NonceLength];
        ScramSyntax.WriteNonce(_clientNonce);
    }

    /// <summary>For the RFC test vectors: the client nonce is given instead of drawn.</summary>
    internal ScramClient(ScramHash hash, string username, string password, string clientNonce)
        : this(hash, username, password)
        => _clientNonce = Encoding.ASCII.GetBytes(clientNonce);

    public ScramHash Hash => _hash;

    /// <summary>Why the last step failed, in words for a log line; null while all is well.</summary>
    public string? Error { get; private set; }

    /// <summary>client-first-message: <c>n,,n=NAME,r=NONCE</c>.</summary>
    public byte[] ClientFirst()
    {
        if (_state != State.Initial)
        {
            throw new InvalidOperationException("ClientFirst was already called for this exchange.");
        }
        _clientFirstBare = ScramSyntax.Concat("n="u8, _username, ",r="u8, _clientNonce);
        _state = State.AwaitingServerFirst;
        return ScramSyntax.Concat("n,,"u8, _clientFirstBare);
    }

    /// <summary>
    /// Checks server-first-message and computes client-final-message. Failure when the message does not
    /// parse, the nonce does not extend ours, or the iteration count exceeds <see cref="MaxIterations"/>.
    /// </summary>
    public SaslResult ReceiveServerFirst(ReadOnlySpan<byte> message, out byte[]? clientFinal)
    {
        if (_state != State.AwaitingServerFirst)
        {
            throw new InvalidOperationException("ReceiveServerFirst needs ClientFirst first, and only once.");
        }
        clientFinal = null;
        _state = State.Finished;

        // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
        var fields = new ScramSyntax.FieldReader(message);
        Span<byte> salt = stackalloc byte[ScramSyntax.MaxMessageLength / 4 * 3];
        if (message.Length > ScramSyntax.MaxMessageLength
            || !fields.TryNext(out var field)
            || !ScramSyntax.TryGetValue(field, 'r', out var nonce)
            || !fields.TryNext(out field)
            || !ScramSyntax.TryGetValue(field, 's', out var saltValue)
            || !ScramSyntax.TryDecodeBase64(saltValue, salt, out var saltLength)
            || saltLength == 0
            || !fields.TryNext(out field)
            || !ScramSyntax.TryGetValue(field, 'i', out var iterationsValue)
            || !ScramSyntax.TryParsePositNumber(iterationsValue, out var iterations))
        {
            return Fail("server-first-message is malformed (RFC 5802 section 7).");
        }
        while (fields.TryNext(out field))
        {
            if (!ScramSyntax.IsIgnorableExtension(field))
            {
                return Fail("server-first-message has an unknown mandatory or misplaced attribute.");
            }
        }
        if (!ScramSyntax.IsPrintable(nonce) || nonce.Length <= _clientNonce.Length || !nonce.StartsWith(_clientNonce))
        {
            return Fail("The server nonce does not extend the client nonce.");
        }
        if (iterations > MaxIterations)
        {
            return Fail($"The server asks for {iterations} iterations, more than the {MaxIterations} allowed.");
        }

        var hashLength = _hash.HashLength();
        var saltedPassword = _cache?.GetOrDerive(_hash, _password, salt[..saltLength], iterations)
            ?? ScramCredential.SaltedPassword(_password, _hash, salt[..saltLength], iterations);

        // client-final-message-without-proof = channel-binding "," nonce
        var withoutProof = ScramSyntax.Concat(ChannelBindingNone, nonce);
        var authMessage = ScramSyntax.Concat(_clientFirstBare, ","u8, message, ScramSyntax.Concat(","u8, withoutProof));

        Span<byte> clientKey = stackalloc byte[hashLength];
        ScramCredential.Hmac(_hash, saltedPassword, "Client Key"u8, clientKey);
        Span<byte> storedKey = stackalloc byte[hashLength];
        ScramCredential.Digest(_hash, clientKey, storedKey);
        Span<byte> proof = stackalloc byte[hashLength];
        ScramCredential.Hmac(_hash, storedKey, authMessage, proof);
        for (var i = 0; i < proof.Length; i++)
        {
            proof[i] ^= clientKey[i];
        }
        Span<byte> serverKey = stackalloc byte[hashLength];
        ScramCredential.Hmac(_hash, saltedPassword, "Server Key"u8, serverKey);
        _expectedServerSignature = new byte[hashLength];
        ScramCredential.Hmac(_hash, serverKey, authMessage, _expectedServerSignature);

        var final = new byte[withoutProof.Length + ",p="u8.Length + Base64.GetMaxEncodedToUtf8Length(hashLength)];
        withoutProof.CopyTo(final, 0);
        ",p="u8.CopyTo(final.AsSpan(withoutProof.Length));
        Base64.EncodeToUtf8(proof, final.AsSpan(withoutProof.Length + 3), out _, out _);
        clientFinal = final;
        _state = State.AwaitingServerFinal;
        return SaslResult.Continue;
    }

    /// <summary>
    /// True when server-final-message carries the server signature we expect (<c>v=</c>), proving the
    /// server knew our credential. An <c>e=</c> message or a wrong signature gives false and sets
    /// <see cref="Error"/>.
    /// </summary>
    public bool VerifyServerFinal(ReadOnlySpan<byte> message)
    {
        if (_state != State.AwaitingServerFinal)
        {
            throw new InvalidOperationException("VerifyServerFinal needs a successful ReceiveServerFirst first, and only once.");
        }
        _state = State.Finished;

        // server-final-message = (server-error / verifier) ["," extensions]
        var fields = new ScramSyntax.FieldReader(message);
        fields.TryNext(out var field);
        if (ScramSyntax.TryGetValue(field, 'e', out var error))
        {
            Fail($"The server refused the proof: e={Encoding.UTF8.GetString(error)}.");
            return false;
        }
        Span<byte> signature = stackalloc byte[ScramSyntax.MaxHashLength];
        if (!ScramSyntax.TryGetValue(field, 'v', out var verifier)
            || !ScramSyntax.TryDecodeBase64(verifier, signature, out var signatureLength))
        {
            Fail("server-final-message is malformed (RFC 5802 section 7).");
            return false;
        }
        while (fields.TryNext(out field))
        {
            if (!ScramSyntax.IsIgnorableExtension(field))
            {
                Fail("server-final-message has an unknown mandatory or misplaced attribute.");
                return false;
            }
        }
        if (!CryptographicOperations.FixedTimeEquals(signature[..signatureLength], _expectedServerSignature))
        {
            Fail("The server signature is wrong: the server does not know this password.");
            return false;
        }
        return true;
    }

    private SaslResult Fail(string error)
    {
        Error = error;
        _state = State.Finished;
        return SaslResult.Failure;
    }
}
