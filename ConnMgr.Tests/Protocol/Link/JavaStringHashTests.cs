using ConnMgr.Protocol.Link;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Link;

/// <summary>Expected values computed with Java's String.hashCode rule (32-bit wrap) outside .NET.</summary>
public sealed class JavaStringHashTests
{
    [TestCase("", 0)]
    [TestCase("hello", 99162322)]
    [TestCase("hello world", 1794106052)]
    [TestCase("\u00E9", 233)]
    [TestCase("\U0001F600", 1772899, TestName = "surrogate pair hashed as two UTF-16 units")]
    [TestCase("4xk2n9w1pq", -1641839407)]
    [TestCase("The quick brown fox jumps over the lazy dog", -609428141)]
    [TestCase("polygenelubricants", int.MinValue)]
    public void MatchesJava(string value, int expected)
        => Assert.That(JavaStringHash.Compute(value), Is.EqualTo(expected));

    [TestCase("hello", 1, 0)]
    [TestCase("hello", 3, 1)]
    [TestCase("hello", 4, 2)]
    [TestCase("4xk2n9w1pq", 4, 3, TestName = "negative hash uses its absolute value")]
    [TestCase("4xk2n9w1pq", 5, 2)]
    [TestCase("polygenelubricants", 4, 0, TestName = "MIN_VALUE with a power of two: 0")]
    [TestCase("polygenelubricants", 3, -2, TestName = "MIN_VALUE otherwise: negative, Openfire throws")]
    [TestCase("polygenelubricants", 5, -3)]
    public void LinkIndexAsOpenfireComputesIt(string streamId, int links, int expected)
        => Assert.That(JavaStringHash.OpenfireLinkIndex(streamId, links), Is.EqualTo(expected));

    [Test]
    public void LinkCountMustBePositive()
        => Assert.Throws<ArgumentOutOfRangeException>(() => JavaStringHash.OpenfireLinkIndex("x", 0));
}
