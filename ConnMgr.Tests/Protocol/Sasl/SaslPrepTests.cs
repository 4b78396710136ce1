using ConnMgr.Protocol.Sasl;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Sasl;

/// <summary>
/// The RFC 4013 section 3 examples first, then one case per rule. Expected outputs were checked against
/// a SASLprep built on Python's Unicode 3.2 stringprep tables.
/// </summary>
public sealed class SaslPrepTests
{
    [TestCase("I\u00ADX", "IX", TestName = "RFC 4013 #1 soft hyphen mapped to nothing")]
    [TestCase("user", "user", TestName = "RFC 4013 #2 no transformation")]
    [TestCase("USER", "USER", TestName = "RFC 4013 #3 case preserved")]
    [TestCase("\u00AA", "a", TestName = "RFC 4013 #4 NFKC of feminine ordinal")]
    [TestCase("\u2168", "IX", TestName = "RFC 4013 #5 NFKC of roman numeral nine")]
    [TestCase("a\u00A0b", "a b", TestName = "no-break space mapped to space")]
    [TestCase("a\u200Bb", "a b", TestName = "zero width space mapped to space")]
    [TestCase("\u3000x", " x", TestName = "ideographic space mapped to space")]
    [TestCase("pass word", "pass word", TestName = "ASCII space kept")]
    [TestCase("\uFB01", "fi", TestName = "ligature decomposed")]
    [TestCase("\uFF21\uFF22", "AB", TestName = "fullwidth letters")]
    [TestCase("e\u0301", "\u00E9", TestName = "combining accent composed")]
    [TestCase("\u2126", "\u03A9", TestName = "ohm sign to omega")]
    [TestCase("\u05D0\u05D1", "\u05D0\u05D1", TestName = "all right-to-left")]
    [TestCase("\u05D01\u05D1", "\u05D01\u05D1", TestName = "digit between right-to-left letters")]
    [TestCase("\u3042", "\u3042", TestName = "hiragana")]
    [TestCase("a\u0340", "\u00E0", TestName = "deprecated tone mark normalizes to an allowed accent")]
    [TestCase("\u0E01\u0E02", "\u0E01\u0E02", TestName = "thai")]
    public void Normalizes(string input, string expected)
    {
        Assert.That(SaslPrep.TryNormalize(input, out var normalized), Is.True);
        Assert.That(normalized, Is.EqualTo(expected));
    }

    [TestCase("\u0007", TestName = "RFC 4013 #6 prohibited control")]
    [TestCase("\u0627\u0031", TestName = "RFC 4013 #7 bidi: ends with a digit")]
    [TestCase("", TestName = "empty")]
    [TestCase("\u00AD", TestName = "prepares to empty")]
    [TestCase("a\tb", TestName = "tab")]
    [TestCase("a\u007F", TestName = "delete")]
    [TestCase("a\u0085", TestName = "C1 control")]
    [TestCase("a\u2028b", TestName = "line separator")]
    [TestCase("\uE000", TestName = "private use")]
    [TestCase("\U000F0000", TestName = "supplementary private use")]
    [TestCase("\u0378", TestName = "unassigned")]
    [TestCase("\uFFFE", TestName = "non-character")]
    [TestCase("\uFDD0", TestName = "non-character block")]
    [TestCase("a\uFFFF", TestName = "last BMP non-character")]
    [TestCase("\U0001FFFE", TestName = "supplementary non-character")]
    [TestCase("a\u0340\u0007", TestName = "control after a deprecated mark")]
    [TestCase("\uD800x", TestName = "lone high surrogate")]
    [TestCase("x\uDC00", TestName = "lone low surrogate")]
    [TestCase("\uFFFD", TestName = "replacement character")]
    [TestCase("\u2FF0", TestName = "ideographic description")]
    [TestCase("\u200E", TestName = "left-to-right mark")]
    [TestCase("\u202E", TestName = "right-to-left override")]
    [TestCase("\U000E0001", TestName = "language tag")]
    [TestCase("\u05D0a\u05D1", TestName = "bidi: left-to-right letter among right-to-left")]
    [TestCase("1\u0627", TestName = "bidi: starts with a digit")]
    public void Refuses(string input)
    {
        Assert.That(SaslPrep.TryNormalize(input, out var normalized), Is.False);
        Assert.That(normalized, Is.Empty);
    }

    [Test]
    public void WithoutNormalizationOnlyAsciiIsAccepted()
    {
        Assert.That(SaslPrep.TryNormalize("user", canNormalize: false, out var ascii), Is.True);
        Assert.That(ascii, Is.EqualTo("user"));
        Assert.That(SaslPrep.TryNormalize("us\u00E9r", canNormalize: false, out _), Is.False);
        Assert.That(SaslPrep.TryNormalize("\u00AA", canNormalize: false, out _), Is.False);
    }

    /// <summary>
    /// Every BMP code point, a sample of the others and each plane's last two (non-characters), alone
    /// and after a letter: always an answer, never an exception from normalization.
    /// </summary>
    [Test]
    public void AnswersForEveryKindOfCodePoint()
    {
        var accepted = 0;
        for (var c = 0; c <= 0x10FFFF; c += c < 0x10000 ? 1 : 61)
        {
            accepted += Answer(c);
        }
        for (var plane = 1; plane <= 16; plane++)
        {
            Assert.That(Answer((plane << 16) | 0xFFFE) + Answer((plane << 16) | 0xFFFF), Is.Zero, $"plane {plane}");
        }
        Assert.That(accepted, Is.InRange(40_000, 80_000), "roughly the assigned, non-private, non-control BMP code points");

        static int Answer(int c)
        {
            var text = c is >= 0xD800 and <= 0xDFFF ? ((char)c).ToString() : char.ConvertFromUtf32(c);
            SaslPrep.TryNormalize("a" + text, out _);
            return SaslPrep.TryNormalize(text, out _) ? 1 : 0;
        }
    }

    [Test]
    public void PrintableAsciiIsReturnedAsIs()
    {
        const string input = "Some.User-42 !~";
        Assert.That(SaslPrep.TryNormalize(input, out var normalized), Is.True);
        Assert.That(normalized, Is.SameAs(input));
    }
}
