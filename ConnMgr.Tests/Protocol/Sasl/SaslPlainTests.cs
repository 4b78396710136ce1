using System.Text;
using ConnMgr.Protocol.Sasl;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Sasl;

public sealed class SaslPlainTests
{
    [TestCase("\0user\0pencil", null, "user", "pencil")]
    [TestCase("user@example.com\0user\0pencil", "user@example.com", "user", "pencil")]
    [TestCase("\0I\u00ADX\0\u2168", null, "IX", "IX", TestName = "authcid and password SASLprep'd")]
    [TestCase("\0us\u00E9r\0p\u00E4ss w\u00F6rd", null, "us\u00E9r", "p\u00E4ss w\u00F6rd", TestName = "UTF-8")]
    public void Parses(string message, string? authzid, string authcid, string password)
    {
        Assert.That(SaslPlain.TryParse(Encoding.UTF8.GetBytes(message), out var z, out var c, out var p), Is.True);
        Assert.That((z, c, p), Is.EqualTo((authzid, authcid, password)));
    }

    [TestCase("", TestName = "empty")]
    [TestCase("userpencil", TestName = "no NUL")]
    [TestCase("user\0pencil", TestName = "one NUL")]
    [TestCase("\0\0pencil", TestName = "empty authcid")]
    [TestCase("\0user\0", TestName = "empty password")]
    [TestCase("\0user\0pen\0cil", TestName = "NUL in password")]
    [TestCase("\0\0\0", TestName = "only NULs")]
    [TestCase("\0us\u0007er\0pencil", TestName = "authcid fails SASLprep")]
    [TestCase("\0user\0\u00AD", TestName = "password prepares to nothing")]
    public void Refuses(string message)
    {
        Assert.That(SaslPlain.TryParse(Encoding.UTF8.GetBytes(message), out var authzid, out var authcid, out var password), Is.False);
        Assert.That(authzid, Is.Null);
        Assert.That(authcid, Is.Empty);
        Assert.That(password, Is.Empty);
    }

    [Test]
    public void RefusesInvalidUtf8()
        => Assert.That(SaslPlain.TryParse([0, (byte)'u', 0xC3, (byte)'x', 0, (byte)'p'], out _, out _, out _), Is.False);

    [TestCase(255, 'a', true)]
    [TestCase(256, 'a', false)]
    [TestCase(255, '\u00E9', true, TestName = "255 two-byte characters")]
    [TestCase(256, '\u00E9', false, TestName = "256 two-byte characters")]
    public void FieldLengthLimit(int count, char c, bool accepted)
    {
        var field = new string(c, count);
        Assert.That(SaslPlain.TryParse(Encoding.UTF8.GetBytes($"\0user\0{field}"), out _, out _, out _), Is.EqualTo(accepted), "password");
        Assert.That(SaslPlain.TryParse(Encoding.UTF8.GetBytes($"\0{field}\0pencil"), out _, out _, out _), Is.EqualTo(accepted), "authcid");
        Assert.That(SaslPlain.TryParse(Encoding.UTF8.GetBytes($"{field}\0user\0pencil"), out _, out _, out _), Is.EqualTo(accepted), "authzid");
    }

    [TestCase(null, "user", "pencil", "\0user\0pencil")]
    [TestCase("user@example.com", "user", "p\u00E4ss", "user@example.com\0user\0p\u00E4ss")]
    public void EncodesAndRoundTrips(string? authzid, string authcid, string password, string expected)
    {
        var message = SaslPlain.Encode(authzid, authcid, password);
        Assert.That(message, Is.EqualTo(Encoding.UTF8.GetBytes(expected)));
        Assert.That(SaslPlain.TryParse(message, out var z, out var c, out var p), Is.True);
        Assert.That((z, c, p), Is.EqualTo((authzid, authcid, password)));
    }

    [TestCase(null, "", "pencil")]
    [TestCase(null, "user", "")]
    [TestCase(null, "us\0er", "pencil")]
    [TestCase("a\0b", "user", "pencil")]
    public void EncodeRefusesWhatCannotBeSent(string? authzid, string authcid, string password)
        => Assert.Throws<ArgumentException>(() => SaslPlain.Encode(authzid, authcid, password));
}
