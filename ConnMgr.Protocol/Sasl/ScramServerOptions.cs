using System.Security.Cryptography;

namespace ConnMgr.Protocol.Sasl;

/// <summary>Settings one SASL server shares across all its SCRAM exchanges. Build once, reuse.</summary>
public sealed class ScramServerOptions
{
    private static readonly byte[] s_processUnknownUserKey = RandomNumberGenerator.GetBytes(32);

    public static ScramServerOptions Default { get; } = new();

    /// <summary>
    /// The XMPP domain served. A client may name itself as authorization identity
    /// (<c>a=user@Domain</c>); any other authzid is refused with invalid-authzid. Default null: only an
    /// absent authzid is accepted.
    /// </summary>
    public string? Domain { get; init; }

    /// <summary>
    /// Secret from which the fake salt of an unknown user is derived (HMAC-SHA-256 of the user name), so
    /// that asking twice for the same unknown name returns the same salt, as for a real account. Give a
    /// secret that survives restarts (32 random bytes kept with the database); default empty: a random key
    /// per process, which changes those salts on each restart and so lets a patient prober tell unknown
    /// names from real ones.
    /// </summary>
    public ReadOnlyMemory<byte> UnknownUserKey { get; init; }

    /// <summary>
    /// Iteration count announced to unknown users. Default <see cref="ScramCredential.DefaultIterations"/>
    /// (4096): set it to what the user store uses so that unknown users look like real ones.
    /// </summary>
    public int UnknownUserIterations
    {
        get;
        init => field = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(UnknownUserIterations), value, "must be positive");
    } = ScramCredential.DefaultIterations;

    internal ReadOnlySpan<byte> EffectiveUnknownUserKey
        => UnknownUserKey.IsEmpty ? s_processUnknownUserKey : UnknownUserKey.Span;
}
