using ConnMgr.Protocol.Sasl;

namespace ConnMgr.Core.Sasl;

internal enum SaslMechanism : byte { Plain, ScramSha1, ScramSha256 }

/// <summary>The mechanisms the core implements, as the configuration IQ lists them (spec 3.7).</summary>
internal static class SaslMechanisms
{
    /// <summary>Strongest first; the edge offers PLAIN on encrypted client streams only.</summary>
    public static readonly string[] Advertised = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"];

    public static bool TryParse(ReadOnlySpan<byte> name, out SaslMechanism mechanism)
    {
        if (name.SequenceEqual("SCRAM-SHA-256"u8))
        {
            mechanism = SaslMechanism.ScramSha256;
            return true;
        }
        if (name.SequenceEqual("SCRAM-SHA-1"u8))
        {
            mechanism = SaslMechanism.ScramSha1;
            return true;
        }
        mechanism = SaslMechanism.Plain;
        return name.SequenceEqual("PLAIN"u8);
    }
}

/// <summary>One SASL negotiation in progress on a session (RFC 6120 6.4).</summary>
internal sealed class SaslExchange(SaslMechanism mechanism, ScramServer? scram)
{
    public SaslMechanism Mechanism { get; } = mechanism;

    /// <summary>The SCRAM state machine; null for PLAIN.</summary>
    public ScramServer? Scram { get; } = scram;

    /// <summary>SCRAM: server-first was sent, client-final is expected.</summary>
    public bool AwaitingFinal { get; set; }

    /// <summary>SCRAM: the stored user name (normalised by the store) once looked up; null for an unknown user.</summary>
    public string? User { get; set; }
}
