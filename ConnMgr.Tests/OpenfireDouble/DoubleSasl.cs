using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;

namespace ConnMgr.Tests.OpenfireDouble;

internal enum SaslStepKind
{
    Challenge,
    Success,
    Failure,
}

/// <summary>Result of one SASL step: challenge or success data (null = no text), or a failure condition.</summary>
internal readonly record struct SaslStep(SaslStepKind Kind, byte[]? Data = null, string? Username = null, string? Condition = null)
{
    public static SaslStep Fail(string condition = "not-authorized") => new(SaslStepKind.Failure, Condition: condition);
}

/// <summary>Server half of one SASL exchange of one client session.</summary>
internal abstract class SaslExchange
{
    public abstract SaslStep Evaluate(byte[] response);

    /// <summary>
    /// The exchange for <paramref name="mechanism"/>, or null for <c>invalid-mechanism</c>: EXTERNAL and
    /// channel-binding mechanisms never work through a CM (the server sees no TLS, spec 7.2), and the
    /// double implements only PLAIN, SCRAM-SHA-1 and ANONYMOUS.
    /// </summary>
    public static SaslExchange? Create(string mechanism, UserTable users) => mechanism switch
    {
        "PLAIN" => new PlainExchange(users),
        "SCRAM-SHA-1" => new ScramSha1Exchange(users),
        "ANONYMOUS" => new AnonymousExchange(),
        _ => null,
    };
}

/// <summary>Users of the double, with SCRAM keys derived once per user.</summary>
internal sealed class UserTable(string domain, IReadOnlyDictionary<string, string> passwords)
{
    /// <summary>Openfire's default SCRAM iteration count.</summary>
    public const int ScramIterations = 4096;

    private readonly Dictionary<string, string> _passwords = new(passwords, StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, (byte[] Salt, byte[] SaltedPassword)> _scram = new(StringComparer.OrdinalIgnoreCase);

    public string Domain => domain;

    public bool Exists(string user) => _passwords.ContainsKey(user);

    public bool Check(string user, string password) => _passwords.TryGetValue(user, out string? expected) && expected == password;

    public (byte[] Salt, byte[] SaltedPassword)? ScramKeys(string user)
    {
        if (!_passwords.TryGetValue(user, out string? password))
        {
            return null;
        }

        return _scram.GetOrAdd(user, _ =>
        {
            byte[] salt = RandomNumberGenerator.GetBytes(16);
            return (salt, Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(password), salt, ScramIterations, HashAlgorithmName.SHA1, 20));
        });
    }
}

/// <summary>RFC 4616: <c>[authzid] NUL authcid NUL passwd</c>; an empty initial response asks for a (empty) challenge.</summary>
internal sealed class PlainExchange(UserTable users) : SaslExchange
{
    public override SaslStep Evaluate(byte[] response)
    {
        if (response.Length == 0)
        {
            return new SaslStep(SaslStepKind.Challenge, []);
        }

        string[] parts = Encoding.UTF8.GetString(response).Split('\0');
        if (parts.Length != 3)
        {
            return SaslStep.Fail();
        }

        string user = parts[1].ToLowerInvariant();
        string authzid = parts[0];
        if (!users.Check(user, parts[2]))
        {
            return SaslStep.Fail();
        }

        // Openfire's default authorization policy: a user may only act as itself.
        if (authzid.Length > 0 && authzid != user && authzid != $"{user}@{users.Domain}")
        {
            return SaslStep.Fail();
        }

        // Openfire's PLAIN server returns no success data: <success/> is empty (spec 7.3).
        return new SaslStep(SaslStepKind.Success, Username: user);
    }
}

internal sealed class AnonymousExchange : SaslExchange
{
    public override SaslStep Evaluate(byte[] response) => new(SaslStepKind.Success);
}

/// <summary>RFC 5802 SCRAM-SHA-1 without channel binding (a CM-hosted session has none, spec 7.2).</summary>
internal sealed class ScramSha1Exchange(UserTable users) : SaslExchange
{
    private string? _user;
    private string? _gs2Header;
    private string? _clientFirstBare;
    private string? _serverFirst;
    private string? _nonce;
    private byte[]? _saltedPassword;

    public override SaslStep Evaluate(byte[] response)
    {
        string message = Encoding.UTF8.GetString(response);
        return _serverFirst is null ? First(message) : Final(message);
    }

    private SaslStep First(string message)
    {
        // gs2-header: "n,," or "y,," (no authzid); "p=" asks for channel binding, which a CM session cannot have.
        if (!(message.StartsWith("n,,", StringComparison.Ordinal) || message.StartsWith("y,,", StringComparison.Ordinal)))
        {
            return SaslStep.Fail();
        }

        _gs2Header = message[..3];
        _clientFirstBare = message[3..];
        string? name = null;
        string? clientNonce = null;
        foreach (string attribute in _clientFirstBare.Split(','))
        {
            if (attribute.StartsWith("n=", StringComparison.Ordinal))
            {
                name = attribute[2..].Replace("=2C", ",", StringComparison.Ordinal).Replace("=3D", "=", StringComparison.Ordinal);
            }
            else if (attribute.StartsWith("r=", StringComparison.Ordinal))
            {
                clientNonce = attribute[2..];
            }
        }

        if (name is null || string.IsNullOrEmpty(clientNonce) || users.ScramKeys(name.ToLowerInvariant()) is not { } keys)
        {
            return SaslStep.Fail();
        }

        _user = name.ToLowerInvariant();
        _saltedPassword = keys.SaltedPassword;
        _nonce = clientNonce + Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        _serverFirst = $"r={_nonce},s={Convert.ToBase64String(keys.Salt)},i={UserTable.ScramIterations}";
        return new SaslStep(SaslStepKind.Challenge, Encoding.UTF8.GetBytes(_serverFirst));
    }

    private SaslStep Final(string message)
    {
        int proofAt = message.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0 || _saltedPassword is null)
        {
            return SaslStep.Fail();
        }

        string withoutProof = message[..proofAt];
        string expectedBinding = "c=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(_gs2Header!));
        if (!withoutProof.StartsWith(expectedBinding + ",r=" + _nonce, StringComparison.Ordinal))
        {
            return SaslStep.Fail();
        }

        byte[] proof;
        try
        {
            proof = Convert.FromBase64String(message[(proofAt + 3)..]);
        }
        catch (FormatException)
        {
            return SaslStep.Fail();
        }

        byte[] authMessage = Encoding.UTF8.GetBytes($"{_clientFirstBare},{_serverFirst},{withoutProof}");
        byte[] clientKey = HMACSHA1.HashData(_saltedPassword, "Client Key"u8);
        byte[] storedKey = SHA1.HashData(clientKey);
        byte[] clientSignature = HMACSHA1.HashData(storedKey, authMessage);
        if (proof.Length != clientSignature.Length)
        {
            return SaslStep.Fail();
        }

        for (int i = 0; i < proof.Length; i++)
        {
            proof[i] ^= clientSignature[i];
        }

        if (!CryptographicOperations.FixedTimeEquals(SHA1.HashData(proof), storedKey))
        {
            return SaslStep.Fail();
        }

        byte[] serverKey = HMACSHA1.HashData(_saltedPassword, "Server Key"u8);
        string serverFinal = "v=" + Convert.ToBase64String(HMACSHA1.HashData(serverKey, authMessage));
        return new SaslStep(SaslStepKind.Success, Encoding.UTF8.GetBytes(serverFinal), _user);
    }
}
