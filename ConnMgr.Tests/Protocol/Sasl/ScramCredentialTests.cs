using ConnMgr.Protocol.Sasl;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Sasl;

public sealed class ScramCredentialTests
{
    /// <summary>
    /// Expected keys printed by GNU SASL 2.2.0, an implementation independent of this one:
    /// <c>gsasl --mkpasswd --mechanism MECH --password PASS --salt SALT --iteration-count N</c>.
    /// The last rows check that gsasl's SASLprep agrees with ours.
    /// </summary>
    [TestCase(ScramHash.Sha1, "pencil", "QSXCR+Q6sek8bf92", 4096, "6dlGYMOdZcOPutkcNY8U2g7vK9Y=", "D+CSWLOshSulAsxiupA+qs2/fTE=")]
    [TestCase(ScramHash.Sha256, "pencil", "W22ZaJ0SNY7soEsUEjb6gQ==", 4096, "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=", "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=")]
    [TestCase(ScramHash.Sha1, "a b", "QSXCR+Q6sek8bf92", 1, "1A4ipnewC198DjA6eZYhH5C505w=", "ogx8KsfWUxJ3QMo2fRw4E1thRzw=")]
    [TestCase(ScramHash.Sha1, "a\u200Bb", "QSXCR+Q6sek8bf92", 1, "1A4ipnewC198DjA6eZYhH5C505w=", "ogx8KsfWUxJ3QMo2fRw4E1thRzw=")]
    [TestCase(ScramHash.Sha1, "a\u00A0b", "QSXCR+Q6sek8bf92", 1, "1A4ipnewC198DjA6eZYhH5C505w=", "ogx8KsfWUxJ3QMo2fRw4E1thRzw=")]
    [TestCase(ScramHash.Sha1, "\u2168", "QSXCR+Q6sek8bf92", 1, "fWrS/t9ku6Dn+xB1YmINa20hMl0=", "dPJoC5Yqk1XIpGwU9dP3Rt/Gkwc=")]
    [TestCase(ScramHash.Sha1, "I\u00ADX", "QSXCR+Q6sek8bf92", 1, "fWrS/t9ku6Dn+xB1YmINa20hMl0=", "dPJoC5Yqk1XIpGwU9dP3Rt/Gkwc=")]
    public void MatchesGnuSasl(ScramHash hash, string password, string salt, int iterations, string storedKey, string serverKey)
    {
        Assert.That(SaslPrep.TryNormalize(password, out var prepared), Is.True);
        var credential = ScramCredential.Derive(prepared, hash, Convert.FromBase64String(salt), iterations);
        Assert.That(Convert.ToBase64String(credential.StoredKey), Is.EqualTo(storedKey));
        Assert.That(Convert.ToBase64String(credential.ServerKey), Is.EqualTo(serverKey));
    }

    [TestCase(ScramHash.Sha1)]
    [TestCase(ScramHash.Sha256)]
    public void MatchesChecksAPlainPassword(ScramHash hash)
    {
        var credential = ScramCredential.Derive("pencil", hash, 4096);
        Assert.That(credential.Matches("pencil"), Is.True);
        Assert.That(credential.Matches("pencil "), Is.False);
        Assert.That(credential.Matches("Pencil"), Is.False);
    }
}
