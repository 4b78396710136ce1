using ConnMgr.Core.Storage;
using NUnit.Framework;

namespace ConnMgr.Tests.Core.Storage;

[TestFixture]
public class UserNamesTests
{
    [TestCase("alice", "alice")]
    [TestCase("Alice", "alice")]
    [TestCase("ÉMILE", "émile")]
    [TestCase("e\u0301mile", "\u00E9mile")] // NFC composes e + combining acute
    [TestCase("user.name-1_x+tag", "user.name-1_x+tag")]
    [TestCase("日本語", "日本語")]
    public void Normalizes_valid_names(string input, string expected)
    {
        Assert.That(UserNames.TryNormalize(input, out var normalized, out var error), Is.True, error);
        Assert.That(normalized, Is.EqualTo(expected));
    }

    [TestCase("", "is empty")]
    [TestCase("al ice", "contains whitespace")]
    [TestCase("alice\t", "contains whitespace")]
    [TestCase("al\u00A0ice", "contains whitespace")]
    [TestCase("alice@localhost", "contains '@'")]
    [TestCase("alice/home", "contains '/'")]
    [TestCase("a\"b", "contains '\"'")]
    [TestCase("a&b", "contains '&'")]
    [TestCase("a'b", "contains '''")]
    [TestCase("a:b", "contains ':'")]
    [TestCase("a<b", "contains '<'")]
    [TestCase("a>b", "contains '>'")]
    [TestCase("a\u0007b", "U+0007")]
    [TestCase("a\u200Bb", "U+200B")]
    [TestCase("a\u202Eb", "U+202E")]
    public void Rejects_invalid_names_saying_why(string input, string reason)
    {
        Assert.That(UserNames.TryNormalize(input, out var normalized, out var error), Is.False);
        Assert.That(normalized, Is.Null);
        Assert.That(error, Does.Contain(reason));
    }

    // Built in code: a lone surrogate does not survive the UTF-8 encoding of an attribute argument.
    [Test]
    public void Rejects_unpaired_surrogates()
    {
        foreach (var text in new[] { "a" + '\uD800' + "b", "a" + '\uDC00', "" + '\uDC00' + '\uD800' })
        {
            Assert.That(UserNames.TryNormalize(text, out _, out var nameError), Is.False);
            Assert.That(nameError, Does.Contain("unpaired surrogate"));
            Assert.That(UserNames.TryNormalizePassword(text, out _, out var passwordError), Is.False);
            Assert.That(passwordError, Does.Contain("unpaired surrogate"));
        }
    }

    [Test]
    public void Names_are_limited_to_1023_bytes_of_UTF8()
    {
        Assert.That(UserNames.TryNormalize(new string('a', 1023), out _, out _), Is.True);
        Assert.That(UserNames.TryNormalize(new string('a', 1024), out _, out var error), Is.False);
        Assert.That(error, Does.Contain("1023 bytes"));
        // 512 two-byte characters are 1024 bytes though only 512 chars.
        Assert.That(UserNames.TryNormalize(new string('é', 512), out _, out _), Is.False);
    }

    // RFC 4013 section 3, examples 1 to 6 (example 7 is the bidi rule, left to the full SASLprep).
    [TestCase("I\u00ADX", "IX")]
    [TestCase("user", "user")]
    [TestCase("USER", "USER")]
    [TestCase("\u00AA", "a")]
    [TestCase("\u2168", "IX")]
    [TestCase("pass\u00A0word", "pass word")]
    [TestCase("correct horse: battery", "correct horse: battery")]
    public void Prepares_passwords_like_SASLprep(string input, string expected)
    {
        Assert.That(UserNames.TryNormalizePassword(input, out var prepared, out var error), Is.True, error);
        Assert.That(prepared, Is.EqualTo(expected));
    }

    [TestCase("", "is empty")]
    [TestCase("\u00AD", "is empty once invisible characters are removed")]
    [TestCase("\u0007", "U+0007")]
    [TestCase("line\nbreak", "U+000A")]
    public void Rejects_invalid_passwords(string input, string reason)
    {
        Assert.That(UserNames.TryNormalizePassword(input, out _, out var error), Is.False);
        Assert.That(error, Does.Contain(reason));
    }
}
