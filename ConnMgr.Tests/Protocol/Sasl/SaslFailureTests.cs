using ConnMgr.Protocol.Sasl;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Sasl;

public sealed class SaslFailureTests
{
    [TestCase(SaslFailure.Aborted, "aborted")]
    [TestCase(SaslFailure.InvalidAuthzid, "invalid-authzid")]
    [TestCase(SaslFailure.MalformedRequest, "malformed-request")]
    [TestCase(SaslFailure.NotAuthorized, "not-authorized")]
    [TestCase(SaslFailure.TemporaryAuthFailure, "temporary-auth-failure")]
    public void ElementNames(SaslFailure failure, string name)
    {
        Assert.That(failure.ToElementName(), Is.EqualTo(name));
        Assert.That(SaslFailures.TryParse(name, out var parsed), Is.True);
        Assert.That(parsed, Is.EqualTo(failure));
    }

    [Test]
    public void EveryConditionRoundTrips()
    {
        foreach (var failure in Enum.GetValues<SaslFailure>())
        {
            Assert.That(SaslFailures.TryParse(failure.ToElementName(), out var parsed) && parsed == failure, Is.True, failure.ToString());
        }
        Assert.That(SaslFailures.TryParse("bad-request", out _), Is.False);
    }
}
