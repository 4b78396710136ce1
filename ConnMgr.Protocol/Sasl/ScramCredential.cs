using System.Security.Cryptography;
using System.Text;

namespace ConnMgr.Protocol.Sasl;

/// <summary>The hash function a SCRAM mechanism is built on (RFC 5802, RFC 7677).</summary>
public enum ScramHash : byte { Sha1, Sha256 }

/// <summary>
/// What a server stores for one user and one SCRAM hash: never the password, only the salt,
/// the iteration count, StoredKey and ServerKey (RFC 5802 section 3).
/// </summary>
public sealed record ScramCredential(ScramHash Hash, byte[] Salt, int Iterations, byte[] StoredKey, byte[] ServerKey)
{
    /// <summary>RFC 7677 section 4 asks for at least 4096 iterations.</summary>
    public const int DefaultIterations = 4096;

    /// <summary>16 bytes of salt, as RFC 5802's examples use.</summary>
    public const int DefaultSaltLength = 16;

    public static ScramCredential Derive(string normalizedPassword, ScramHash hash, int iterations = DefaultIterations)
        => Derive(normalizedPassword, hash, RandomNumberGenerator.GetBytes(DefaultSaltLength), iterations);

    public static ScramCredential Derive(string normalizedPassword, ScramHash hash, byte[] salt, int iterations)
    {
        var salted = SaltedPassword(normalizedPassword, hash, salt, iterations);
        return FromSaltedPassword(hash, salt, iterations, salted);
    }

    /// <summary>Hi(Normalize(password), salt, i): PBKDF2 with HMAC of the mechanism's hash.</summary>
    public static byte[] SaltedPassword(string normalizedPassword, ScramHash hash, ReadOnlySpan<byte> salt, int iterations)
        => Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(normalizedPassword), salt, iterations, hash.ToHashAlgorithmName(), hash.HashLength());

    public static ScramCredential FromSaltedPassword(ScramHash hash, byte[] salt, int iterations, ReadOnlySpan<byte> saltedPassword)
    {
        var clientKey = Hmac(hash, saltedPassword, "Client Key"u8);
        var storedKey = Digest(hash, clientKey);
        var serverKey = Hmac(hash, saltedPassword, "Server Key"u8);
        return new ScramCredential(hash, salt, iterations, storedKey, serverKey);
    }

    /// <summary>
    /// True when <paramref name="normalizedPassword"/> (SASLprep'd) is the password this credential was
    /// derived from: how a server that stores only SCRAM credentials checks a PLAIN login. Costs one
    /// PBKDF2 run of <see cref="Iterations"/>.
    /// </summary>
    public bool Matches(string normalizedPassword)
    {
        Span<byte> saltedPassword = stackalloc byte[Hash.HashLength()];
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(normalizedPassword), Salt, saltedPassword, Iterations, Hash.ToHashAlgorithmName());
        Span<byte> clientKey = stackalloc byte[saltedPassword.Length];
        Hmac(Hash, saltedPassword, "Client Key"u8, clientKey);
        Span<byte> storedKey = stackalloc byte[saltedPassword.Length];
        Digest(Hash, clientKey, storedKey);
        var matches = CryptographicOperations.FixedTimeEquals(storedKey, StoredKey);
        CryptographicOperations.ZeroMemory(saltedPassword);
        CryptographicOperations.ZeroMemory(clientKey);
        return matches;
    }

    internal static int Hmac(ScramHash hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data, Span<byte> destination)
        => hash == ScramHash.Sha1 ? HMACSHA1.HashData(key, data, destination) : HMACSHA256.HashData(key, data, destination);

    internal static int Digest(ScramHash hash, ReadOnlySpan<byte> data, Span<byte> destination)
        => hash == ScramHash.Sha1 ? SHA1.HashData(data, destination) : SHA256.HashData(data, destination);

    internal static byte[] Hmac(ScramHash hash, ReadOnlySpan<byte> key, ReadOnlySpan<byte> data)
        => hash == ScramHash.Sha1 ? HMACSHA1.HashData(key, data) : HMACSHA256.HashData(key, data);

    internal static byte[] Digest(ScramHash hash, ReadOnlySpan<byte> data)
        => hash == ScramHash.Sha1 ? SHA1.HashData(data) : SHA256.HashData(data);
}

public static class ScramHashExtensions
{
    public static HashAlgorithmName ToHashAlgorithmName(this ScramHash hash)
        => hash == ScramHash.Sha1 ? HashAlgorithmName.SHA1 : HashAlgorithmName.SHA256;

    public static int HashLength(this ScramHash hash) => hash == ScramHash.Sha1 ? 20 : 32;

    /// <summary>The SASL mechanism name, e.g. <c>SCRAM-SHA-256</c>.</summary>
    public static string MechanismName(this ScramHash hash) => hash == ScramHash.Sha1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}
