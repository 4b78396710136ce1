using ConnMgr.Protocol.Link;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Link;

public sealed class HandshakeDigestTests
{
    /// <summary>The example of spec 3.6.</summary>
    private const string Expected = "6246058f0ff5a47ba6bdef3b1abfbf8f38220049";

    [Test]
    public void ComputesTheSpecExample()
        => Assert.That(HandshakeDigest.Compute("4xk2n9w1pq", "s3cret"), Is.EqualTo(Expected));

    [Test]
    public void LongInputsGoThroughThePooledBuffer()
    {
        var secret = new string('s', 1000);
        var digest = HandshakeDigest.Compute("4xk2n9w1pq", secret);
        var direct = Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(System.Text.Encoding.UTF8.GetBytes("4xk2n9w1pq" + secret)));
        Assert.That(digest, Is.EqualTo(direct));
        Assert.That(HandshakeDigest.Verify("4xk2n9w1pq", secret, digest), Is.True);
    }

    [TestCase(Expected, true)]
    [TestCase("6246058F0FF5A47BA6BDEF3B1ABFBF8F38220049", true, TestName = "uppercase accepted")]
    [TestCase("6246058f0FF5a47ba6bdef3b1abfbf8f38220049", true, TestName = "mixed case accepted")]
    [TestCase("6246058f0ff5a47ba6bdef3b1abfbf8f38220048", false, TestName = "last digit wrong")]
    [TestCase(" 6246058f0ff5a47ba6bdef3b1abfbf8f38220049", false, TestName = "leading space")]
    [TestCase("6246058f0ff5a47ba6bdef3b1abfbf8f3822004", false, TestName = "too short")]
    [TestCase("6246058f0ff5a47ba6bdef3b1abfbf8f382200490", false, TestName = "too long")]
    [TestCase("6246058f0ff5a47ba6bdef3b1abfbf8f3822004g", false, TestName = "not hex")]
    [TestCase("", false, TestName = "empty")]
    public void Verifies(string received, bool expected)
        => Assert.That(HandshakeDigest.Verify("4xk2n9w1pq", "s3cret", received), Is.EqualTo(expected));

    [Test]
    public void WrongSecretOrIdFails()
    {
        Assert.That(HandshakeDigest.Verify("4xk2n9w1pq", "s3cret!", Expected), Is.False);
        Assert.That(HandshakeDigest.Verify("4xk2n9w1pr", "s3cret", Expected), Is.False);
    }
}
