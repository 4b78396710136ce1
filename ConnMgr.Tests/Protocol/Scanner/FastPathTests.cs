using ConnMgr.Protocol.Xml;
using NUnit.Framework;
using static ConnMgr.Tests.Protocol.Scanner.ScanHarness;

namespace ConnMgr.Tests.Protocol.Scanner;

/// <summary>
/// The scanner's fast path reads a tag through 64-byte windows of the span and hands anything it does not
/// take back to the state machine. The other fixtures' inputs are mostly shorter than a window; these are
/// long enough, and shift every irregular token across a window's edges, so that the fast path, the state
/// machine and each hand-over between them are compared with each other, fed every way a pipe may.
/// </summary>
[TestFixture]
public sealed class FastPathTests
{
    // Enough bytes after each input for a window to load wherever the input's tokens are.
    private static readonly string Tail = new(' ', 80);

    // One window and a few bytes: every token below starts at each offset across both edges of a window.
    private const int Shifts = 68;

    private static readonly XmlScannerOptions NoHeader = new() { ExpectStreamHeader = false };

    [TestCaseSource(typeof(MalformedStreamTests), nameof(MalformedStreamTests.InStream))]
    public void MalformedStanzaFollowedByMoreBytes(byte[] input, StreamErrorCondition expected)
    {
        var outcome = ScanAllWays(Bytes(input, Tail));
        Assert.That(outcome.End, Is.EqualTo($"Error({expected})"), outcome.ToString());
    }

    [TestCaseSource(typeof(ValidStreamTests), nameof(ValidStreamTests.ValidStanzas))]
    public void ValidStanzaFollowedByMoreBytes(string stanza)
    {
        var outcome = ScanAllWays(Utf8(Header + stanza + Tail));
        Assert.That(outcome.Frames.Skip(1), Is.EqualTo(new[] { Element(stanza), Whitespace(Tail) }), outcome.ToString());
        Assert.That(outcome.End, Is.EqualTo("NeedMoreData(0)"));
    }

    [Test]
    public void RealisticStanzas()
    {
        string[] stanzas =
        [
            "<message to='romeo@example.net/orchard' from='juliet@example.com/balcony' type='chat' id='m1' xml:lang='en'><body>Wherefore art thou, Romeo? Deny thy father and refuse thy name.</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>",
            "<presence from='juliet@example.com/balcony' id='p2'><show>away</show><status>\u0412 \u043F\u0443\u0442\u0438 \u2014 \u65C5\u884C\u4E2D \U0001F6EB back at 5</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>",
            "<iq type='result' id='r3' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver14'><item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item><item jid='nurse@example.com' name='Nurse' subscription='to'/></query></iq>",
            "<message to='romeo@example.net' type='chat' id='m4'><body><![CDATA[if (a < b && c > d) { return x[y[0]]; }]]></body><x xmlns:oob='jabber:x:oob'><oob:url>https://example.com/share/a.png?size=1&amp;v=2</oob:url></x></message>",
        ];
        var input = Utf8(string.Concat(stanzas) + Tail);
        var outcome = ScanAllWays(input, NoHeader);
        Assert.That(outcome.Frames, Is.EqualTo(stanzas.Select(Element).Append(Whitespace(Tail))), outcome.ToString());
    }

    private static IEnumerable<TestCaseData> ValidAtEveryShift()
    {
        TestCaseData Case(string name, string template) => new TestCaseData(template).SetName("ValidAtEveryShift_" + name);

        yield return Case("IrregularAttributesAndText",
            "<message id='{0}' to='romeo@example.net' type='chat' xml:lang='en' a='&amp;&#x41;' b='\u00E9t\u00E9' c=\"it's\" d = 'x' e='t\tab'>"
            + "<body>x &lt; y \u00E9 ] z]] w</body><x xmlns='urn:x' xmlns:p='urn:p' p:q='1'/><p:y xmlns:p='urn:y'/><![CDATA[c]]></message>");
        yield return Case("LongNames", "<m{0} a{0}='1' b{0}:c='2' xmlns:b{0}='urn:b'><n{0}/></m{0}>");
        yield return Case("LongValues", "<m a='{0}' b=\"{0}\" c='{0}&amp;{0}'>{0}</m>");
        yield return Case("EndTagsWithSpaces", "<m{0}><n{0} ></n{0} ></m{0}\n>");
        yield return Case("PrefixedNames", "<p:m{0} xmlns:p='urn:p' p:a{0}='1' xml:lang='en' q:b='2' xmlns:q='urn:q'><p:n{0} p:c='3'/></p:m{0}>");
        yield return Case("XmlPrefixedAttributes", "<m a{0}='1' xml:lang='en' xml:space='preserve'><n xml:lang='fr' xmlns='urn:n'/></m>");
        // Default namespaces that share the reserved URIs' first bytes or length, and a name shaped like xmlns.
        yield return Case("DefaultNamespacesNearReserved",
            "<m a{0}='1' xmlns='http://www.w3.org/2000/svg#elements'><n xmlns='http://www.w3.org/XML/1998/namespaces'/>"
            + "<o xtras='http://www.w3.org/XML/1998/namespace'/><p xmlns='urn:xmpp:http://www.w3.org/2000/xmlns/'/></m>");
        // Names of equal length, first and last byte: the duplicate check must compare them in full.
        yield return Case("AttributesAlikeButDistinct", "<m a{0}='1' abc='1' adc='2' aec='3' p:abc='4' xmlns:p='urn:p' q:abc='5' xmlns:q='urn:q'/>");
        yield return Case("CdataSections", "<m>{0}<![CDATA[]]><![CDATA[{0}<x>&amp;]]]]><![CDATA[>\u00E9\U0001F600 ]] ]>]]>{0}</m>");
    }

    [TestCaseSource(nameof(ValidAtEveryShift))]
    public void ValidTokensAtEveryOffsetOfAWindow(string template)
    {
        for (var shift = 0; shift < Shifts; shift++)
        {
            var stanza = string.Format(template, new string('n', shift));
            var outcome = ScanAllWays(Utf8(stanza + Tail), NoHeader);
            Assert.That(outcome.Frames, Is.EqualTo(new[] { Element(stanza), Whitespace(Tail) }), $"shift {shift}: {outcome}");
        }
    }

    private static IEnumerable<TestCaseData> MalformedAtEveryShift()
    {
        TestCaseData Case(string name, StreamErrorCondition expected, params object[] parts)
            => new TestCaseData(parts, expected).SetName("MalformedAtEveryShift_" + name);

        const StreamErrorCondition NotWellFormed = StreamErrorCondition.NotWellFormed;
        yield return Case("DuplicateAttribute", NotWellFormed, "<message id='{0}' a='1' b='2' a='3'/>");
        yield return Case("DuplicateAfterPrefixed", NotWellFormed, "<message id='{0}' xml:lang='en' a='2' a='3'/>");
        yield return Case("DuplicateAmongMany", NotWellFormed, "<message id='{0}' a='1' b='2' c='3' d='4' e='5' a='6'/>");
        yield return Case("DuplicatePrefixedAttribute", NotWellFormed, "<message id='{0}' xmlns:p='urn:p' p:a='1' p:a='2'/>");
        yield return Case("DuplicateExpandedName", NotWellFormed, "<message id='{0}' xmlns:p='urn:x' xmlns:q='urn:x' p:a='1' q:a='2'/>");
        yield return Case("DuplicateXmlLang", NotWellFormed, "<message id='{0}' xml:lang='en' a='1' xml:lang='fr'/>");
        yield return Case("UnboundPrefixAfterXmlLang", StreamErrorCondition.BadNamespacePrefix, "<message id='{0}' xml:lang='en' xmm:lang='en'/>");
        // Tags whose attribute checks are found needed on the first attribute (read once, keeping records) or later (read again).
        yield return Case("DuplicateAfterFirstAttributePrefixed", NotWellFormed, "<message xmlns:p='urn:p' id='{0}' a='1' a='2'/>");
        yield return Case("DuplicateInPrefixedElement", NotWellFormed, "<p:message xmlns:p='urn:p' id='{0}' a='1' a='2'/>");
        yield return Case("UnboundPrefixOnFirstAttribute", StreamErrorCondition.BadNamespacePrefix, "<message p:a='1' id='{0}' b='2'/>");
        yield return Case("UnboundPrefixAfterPlainAttributes", StreamErrorCondition.BadNamespacePrefix, "<message id='{0}' a='1' b='2' p:c='3'/>");
        yield return Case("ReservedDefaultNamespaceAfterPlainAttributes", NotWellFormed, "<message id='{0}' a='1' xmlns='http://www.w3.org/2000/xmlns/'/>");
        yield return Case("UnboundPrefixLikeXml", StreamErrorCondition.BadNamespacePrefix, "<message id='{0}' xmlx:a='1'/>");
        yield return Case("ReservedDefaultNamespaceByReference", NotWellFormed, "<message id='{0}'><x xmlns='http&#x3A;//www.w3.org/2000/xmlns/'/></message>");
        yield return Case("ReservedDefaultNamespaceFirstByteByReference", NotWellFormed, "<message id='{0}' xmlns='&#104;ttp://www.w3.org/XML/1998/namespace'/>");
        yield return Case("DuplicateDefaultNamespace", NotWellFormed, "<message id='{0}' xmlns='urn:a' xmlns='urn:b'/>");
        yield return Case("TwoColonsInAttributeName", NotWellFormed, "<message id='{0}' xmlns:p='urn:p' p:a:b='1'/>");
        yield return Case("TwoColonsInElementName", NotWellFormed, "<message id='{0}' xmlns:p='urn:p'><p:a:b/></message>");
        yield return Case("DigitAfterColon", NotWellFormed, "<message id='{0}' xmlns:p='urn:p' p:1='1'/>");
        yield return Case("EmptyLocalPart", NotWellFormed, "<message id='{0}' xmlns:p='urn:p' p:='1'/>");
        yield return Case("EmptyPrefix", NotWellFormed, "<message id='{0}' :a='1'/>");
        yield return Case("LessThanInValue", NotWellFormed, "<message id='{0}' a='x<y'/>");
        yield return Case("ControlInValue", NotWellFormed, "<message id='{0}' a='x\u0001'/>");
        yield return Case("ControlInText", NotWellFormed, "<message id='{0}'>x\u0001</message>");
        yield return Case("OverlongInValue", NotWellFormed, "<message id='{0}' a='x", new byte[] { 0xC0, 0xAF }, "'/>");
        yield return Case("SurrogateInText", NotWellFormed, "<message id='{0}'>x", new byte[] { 0xED, 0xA0, 0x80 }, "</message>");
        yield return Case("NonCharacterInText", NotWellFormed, "<message id='{0}'>x", new byte[] { 0xEF, 0xBF, 0xBF }, "</message>");
        yield return Case("CdataEndInText", NotWellFormed, "<message id='{0}'><body>a]]>b</body></message>");
        yield return Case("ControlInCdata", NotWellFormed, "<message id='{0}'><![CDATA[x\u0001]]></message>");
        yield return Case("SurrogateInCdata", NotWellFormed, "<message id='{0}'><![CDATA[x", new byte[] { 0xED, 0xA0, 0x80 }, "]]></message>");
        yield return Case("NonCharacterInCdata", NotWellFormed, "<message id='{0}'><![CDATA[x", new byte[] { 0xEF, 0xBF, 0xBE }, "]]></message>");
        yield return Case("MalformedCdataOpening", NotWellFormed, "<message id='{0}'><![CDATX[x]]></message>");
        yield return Case("CommentInContent", StreamErrorCondition.RestrictedXml, "<message id='{0}'><!-- x --></message>");
        yield return Case("MismatchedEndTag", NotWellFormed, "<message id='{0}'><body>x</bodx></message>");
        yield return Case("EndTagLongerThanOpenName", NotWellFormed, "<message id='{0}'><body>x</bodyx></message>");
        // End tag names are compared 8 bytes at a time when short: a difference in the first, the last or a ninth byte.
        yield return Case("EndTagDiffersInFirstByte", NotWellFormed, "<message id='{0}'><presence>x</oresence></message>");
        yield return Case("EndTagDiffersInEighthByte", NotWellFormed, "<message id='{0}'><presence>x</presencf></message>");
        yield return Case("EndTagDiffersInNinthByte", NotWellFormed, "<message id='{0}'><abcdefghi>x</abcdefghj></message>");
        yield return Case("OneByteEndTagDiffers", NotWellFormed, "<message id='{0}'><a>x</b></message>");
        yield return Case("EndTagShorterThanOpenName", NotWellFormed, "<message id='{0}'><presence>x</presenc></message>");
        yield return Case("BadCharacterReference", NotWellFormed, "<message id='{0}' a='&#0;'/>");
        yield return Case("NoSpaceBetweenAttributes", NotWellFormed, "<message id='{0}'a='1'/>");
        yield return Case("UnquotedValue", NotWellFormed, "<message id='{0}' a=1/>");
        yield return Case("UndefinedEntityInValue", StreamErrorCondition.RestrictedXml, "<message id='{0}' a='&foo;'/>");
        yield return Case("UndefinedEntityInText", StreamErrorCondition.RestrictedXml, "<message id='{0}'>&nbsp;</message>");
        yield return Case("UnboundAttributePrefix", StreamErrorCondition.BadNamespacePrefix, "<message id='{0}' p:a='1'/>");
        yield return Case("UnboundElementPrefix", StreamErrorCondition.BadNamespacePrefix, "<message id='{0}'><p:x/></message>");
        yield return Case("ReservedDefaultNamespace", NotWellFormed, "<message id='{0}' xmlns='http://www.w3.org/XML/1998/namespace'/>");
        yield return Case("TooManyAttributes", StreamErrorCondition.PolicyViolation, "<message id='{0}' a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8'/>");
        yield return Case("TooDeep", StreamErrorCondition.PolicyViolation, "<m id='{0}'><a><a><a><a><a><a><a/></a></a></a></a></a></a></m>");
        yield return Case("NameTooLong", StreamErrorCondition.PolicyViolation, "<message id='{0}' aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa='1'/>");
    }

    [TestCaseSource(nameof(MalformedAtEveryShift))]
    public void MalformedTokensAtEveryOffsetOfAWindow(object[] parts, StreamErrorCondition expected)
    {
        // Limits low enough for the TooMany/TooDeep/TooLong cases; the others stay within them.
        var options = new XmlScannerOptions { ExpectStreamHeader = false, MaxAttributes = 8, MaxDepth = 6, MaxNameLength = 32 };
        for (var shift = 0; shift < Shifts; shift++)
        {
            var shifted = parts.Select(part => part is string text ? string.Format(text, new string('n', shift)) : part).Append(Tail).ToArray();
            var outcome = ScanAllWays(Bytes(shifted), options);
            Assert.That(outcome.End, Is.EqualTo($"Error({expected})"), $"shift {shift}: {outcome}");
        }
    }
}
