using ConnMgr.Protocol.Xml;
using NUnit.Framework;
using static ConnMgr.Tests.Protocol.Scanner.ScanHarness;

namespace ConnMgr.Tests.Protocol.Scanner;

/// <summary>
/// Each input breaks one rule of RFC 6120 section 11 (or of XML 1.0 / Namespaces in XML 1.0 that it
/// incorporates) and must end the stream with exactly the given condition, however the bytes arrive.
/// </summary>
[TestFixture]
public sealed class MalformedStreamTests
{
    private const StreamErrorCondition NotWellFormed = StreamErrorCondition.NotWellFormed;
    private const StreamErrorCondition Restricted = StreamErrorCondition.RestrictedXml;
    private const StreamErrorCondition BadPrefix = StreamErrorCondition.BadNamespacePrefix;
    private const StreamErrorCondition InvalidNamespace = StreamErrorCondition.InvalidNamespace;

    private const string StreamNs = "xmlns:stream='http://etherx.jabber.org/streams'";

    /// <summary>Stanza-level cases: the input is a valid stream header followed by these bytes.</summary>
    internal static IEnumerable<TestCaseData> InStream()
    {
        TestCaseData Case(string name, StreamErrorCondition expected, params object[] body)
            => new TestCaseData(Bytes([Header, .. body]), expected).SetName("InStream_" + name);

        // UTF-8 (XML 1.0 4.3.3, RFC 6120 11.6)
        yield return Case("Overlong2ByteSlash", NotWellFormed, "<message><body>", new byte[] { 0xC0, 0xAF }, "</body></message>");
        yield return Case("OverlongC1", NotWellFormed, "<message><body>", new byte[] { 0xC1, 0xBF }, "</body></message>");
        yield return Case("Overlong3Byte", NotWellFormed, "<message><body>", new byte[] { 0xE0, 0x80, 0xAF }, "</body></message>");
        yield return Case("Overlong4Byte", NotWellFormed, "<message><body>", new byte[] { 0xF0, 0x80, 0x80, 0xAF }, "</body></message>");
        yield return Case("SurrogateInText", NotWellFormed, "<message><body>a", new byte[] { 0xED, 0xA0, 0x80 }, "</body></message>");
        yield return Case("LowSurrogateInText", NotWellFormed, "<message><body>", new byte[] { 0xED, 0xBF, 0xBF }, "</body></message>");
        yield return Case("SurrogateInAttribute", NotWellFormed, "<message id='", new byte[] { 0xED, 0xB0, 0x80 }, "'/>");
        yield return Case("SurrogateInName", NotWellFormed, "<a", new byte[] { 0xED, 0xA0, 0x80 }, "/>");
        yield return Case("AboveU10FFFF", NotWellFormed, "<message><body>", new byte[] { 0xF4, 0x90, 0x80, 0x80 }, "</body></message>");
        yield return Case("LeadF5", NotWellFormed, "<message><body>", new byte[] { 0xF5, 0x80, 0x80, 0x80 }, "</body></message>");
        yield return Case("LeadFF", NotWellFormed, "<message><body>", new byte[] { 0xFF }, "</body></message>");
        yield return Case("StrayContinuation", NotWellFormed, "<message><body>a", new byte[] { 0x80 }, "</body></message>");
        yield return Case("TruncatedBeforeAscii", NotWellFormed, "<message><body>", new byte[] { 0xE4, 0xB8 }, "</body></message>");
        yield return Case("TruncatedBeforeEndOfAttribute", NotWellFormed, "<message id='", new byte[] { 0xF0, 0x9F, 0x98 }, "'/>");
        yield return Case("TruncatedInNameBeforeSlash", NotWellFormed, "<caf", new byte[] { 0xC3 }, "/>");
        yield return Case("TruncatedInCdata", NotWellFormed, "<message><body><![CDATA[", new byte[] { 0xE2, 0x82 }, "]]></body></message>");
        yield return Case("InvalidBytesInCdata", NotWellFormed, "<message><body><![CDATA[", new byte[] { 0xC0, 0x80 }, "]]></body></message>");
        yield return Case("TruncatedAtStreamEnd", NotWellFormed, "<message><body>x", new byte[] { 0xE2 }, "</body></message></stream:stream>");
        yield return Case("InvalidByteAtTopLevel", NotWellFormed, new byte[] { 0xC3, 0xA9 }, "<message/>");

        // XML 1.0 Char production
        yield return Case("RawFFFEInText", NotWellFormed, "<message><body>", new byte[] { 0xEF, 0xBF, 0xBE }, "</body></message>");
        yield return Case("RawFFFFInAttribute", NotWellFormed, "<message id='", new byte[] { 0xEF, 0xBF, 0xBF }, "'/>");
        yield return Case("ControlInText", NotWellFormed, "<message><body>a\u0001b</body></message>");
        yield return Case("NulInAttribute", NotWellFormed, "<message id='a\0'/>");
        yield return Case("FormFeedInText", NotWellFormed, "<message><body>\f</body></message>");
        yield return Case("EscapeInCdata", NotWellFormed, "<message><body><![CDATA[\u001b]]></body></message>");
        yield return Case("CharRefZero", NotWellFormed, "<message><body>&#0;</body></message>");
        yield return Case("CharRefHexZero", NotWellFormed, "<message><body>&#x0;</body></message>");
        yield return Case("CharRefControl", NotWellFormed, "<message><body>&#x1B;</body></message>");
        yield return Case("CharRefSurrogate", NotWellFormed, "<message><body>&#xD800;</body></message>");
        yield return Case("CharRefFFFE", NotWellFormed, "<message><body>&#xFFFE;</body></message>");
        yield return Case("CharRefFFFFDecimal", NotWellFormed, "<message id='&#65535;'/>");
        yield return Case("CharRefAbove10FFFF", NotWellFormed, "<message><body>&#x110000;</body></message>");
        yield return Case("CharRefOverflow", NotWellFormed, "<message><body>&#99999999999999999999;</body></message>");
        yield return Case("CharRefUppercaseX", NotWellFormed, "<message><body>&#X41;</body></message>");
        yield return Case("CharRefEmpty", NotWellFormed, "<message><body>&#;</body></message>");
        yield return Case("CharRefEmptyHex", NotWellFormed, "<message><body>&#x;</body></message>");
        yield return Case("CharRefBadDigit", NotWellFormed, "<message><body>&#12a;</body></message>");

        // References and text
        yield return Case("BareAmpersand", NotWellFormed, "<message><body>fish & chips</body></message>");
        yield return Case("EntityWithoutSemicolon", NotWellFormed, "<message><body>&amp </body></message>");
        yield return Case("AmpersandInAttribute", NotWellFormed, "<message id='a&b'/>");
        yield return Case("CdataEndInText", NotWellFormed, "<message><body>a]]>b</body></message>");
        yield return Case("CdataEndInTextAfterBrackets", NotWellFormed, "<message><body>]]]]></body></message>");
        yield return Case("TextAtTopLevel", NotWellFormed, "hello<message/>");
        yield return Case("TextAfterStanza", NotWellFormed, "<message/> x");
        yield return Case("CdataAtTopLevel", NotWellFormed, "<![CDATA[x]]>");
        yield return Case("UnfinishedCdataOpening", NotWellFormed, "<message><![CDATX[x]]></message>");
        yield return Case("BangGarbage", NotWellFormed, "<message><!x></message>");
        yield return Case("BangDashGarbage", NotWellFormed, "<message><!-x></message>");

        // Tags and attributes
        yield return Case("UnquotedAttribute", NotWellFormed, "<message to=juliet@example.com/>");
        yield return Case("LessThanInAttribute", NotWellFormed, "<message id='a<b'/>");
        yield return Case("DuplicateAttribute", NotWellFormed, "<message id='a' type='chat' id='b'/>");
        yield return Case("DuplicateAttributeAroundIrregularOne", NotWellFormed, "<message a='1' b = '2' a='3'/>");
        yield return Case("DuplicateAttributeFirstAndLast", NotWellFormed, "<message a='1' b='2' c='3' d='4' e='5' a='6'/>");
        yield return Case("DuplicateAttributeNested", NotWellFormed, "<message><body xml:lang='en' xml:lang='de'>x</body></message>");
        yield return Case("DuplicateExpandedName", NotWellFormed, "<message xmlns:a='urn:x' xmlns:b='urn:x' a:foo='1' b:foo='2'/>");
        yield return Case("DuplicateExpandedNameViaHeaderPrefix", NotWellFormed, "<message xmlns:s='http://etherx.jabber.org/streams' s:foo='1' stream:foo='2'/>");
        yield return Case("DuplicateNamespaceDeclaration", NotWellFormed, "<message xmlns:a='urn:x' xmlns:a='urn:y'/>");
        yield return Case("AttributesNotSeparated", NotWellFormed, "<message id='a'type='chat'/>");
        yield return Case("AttributeWithoutValue", NotWellFormed, "<message foo/>");
        yield return Case("AttributeWithoutEquals", NotWellFormed, "<message foo 'x'/>");
        yield return Case("SlashNotFollowedByGt", NotWellFormed, "<message / >");
        yield return Case("AttributesOnEndTag", NotWellFormed, "<message></message id='x'>");
        yield return Case("SpaceAfterLt", NotWellFormed, "< message/>");
        yield return Case("NameStartsWithDigit", NotWellFormed, "<1message/>");
        yield return Case("NameStartsWithDash", NotWellFormed, "<message><-x/></message>");
        yield return Case("NameStartsWithColon", NotWellFormed, "<:message/>");
        yield return Case("NameEndsWithColon", NotWellFormed, "<message xmlns:a='urn:a'><a:/></message>");
        yield return Case("NameWithTwoColons", NotWellFormed, "<message xmlns:a='urn:a'><a:b:c/></message>");
        yield return Case("LocalNameStartsWithDigit", NotWellFormed, "<message xmlns:a='urn:a'><a:1/></message>");
        yield return Case("NonNameCharacterInName", NotWellFormed, "<a\u00D7b/>");
        yield return Case("NonNameStartCharacter", NotWellFormed, "<\u00B7a/>");
        yield return Case("EmptyEndTag", NotWellFormed, "<message></></message>");

        // Nesting: a stanza can neither close its parent nor end the stream (RFC 6120 11.3 well-formedness)
        yield return Case("MismatchedEndTag", NotWellFormed, "<message><body></message></body>");
        yield return Case("EndTagPrefixMismatch", NotWellFormed, "<message xmlns:a='urn:a' xmlns:b='urn:a'><a:x></b:x></message>");
        yield return Case("StrayStreamEndInStanza", NotWellFormed, "<message><body>hi</stream:stream>");
        yield return Case("StrayStreamEndAtDepth1", NotWellFormed, "<message></stream:stream>");
        yield return Case("StrayRouteEnd", NotWellFormed, "<message></route><message/>");
        yield return Case("StrayEndAtTopLevel", NotWellFormed, "<message/></message>");
        yield return Case("WrongStreamEndPrefix", NotWellFormed, "</s:stream>");
        yield return Case("DataAfterStreamEnd", NotWellFormed, "</stream:stream><message/>");

        // Namespaces in XML 1.0 constraints
        yield return Case("UndeclaringPrefix", NotWellFormed, "<message xmlns:p=''/>");
        yield return Case("DeclaringXmlns", NotWellFormed, "<message xmlns:xmlns='urn:x'/>");
        yield return Case("RebindingXml", NotWellFormed, "<message xmlns:xml='urn:x'/>");
        yield return Case("BindingXmlNamespace", NotWellFormed, "<message xmlns:p='http://www.w3.org/XML/1998/namespace'/>");
        yield return Case("BindingXmlnsNamespace", NotWellFormed, "<message xmlns:p='http://www.w3.org/2000/xmlns/'/>");
        yield return Case("DefaultXmlnsNamespace", NotWellFormed, "<message xmlns='http://www.w3.org/2000/xmlns/'/>");
        yield return Case("DefaultXmlNamespaceEscaped", NotWellFormed, "<message xmlns='http://www.w3.org/XML/1998/&#110;amespace'/>");

        // RFC 6120 11.1 restricted XML
        yield return Case("CommentInStanza", Restricted, "<message><!-- hi --></message>");
        yield return Case("CommentAtTopLevel", Restricted, "<!-- hi --><message/>");
        yield return Case("DoctypeInStanza", Restricted, "<message><!DOCTYPE x></message>");
        yield return Case("EntityDeclaration", Restricted, "<!ENTITY x 'y'>");
        yield return Case("ProcessingInstructionInStanza", Restricted, "<message><?foo bar?></message>");
        yield return Case("ProcessingInstructionAtTopLevel", Restricted, "<?foo bar?>");
        yield return Case("XmlDeclarationInStream", Restricted, "<?xml version='1.0'?>");
        yield return Case("UndefinedEntity", Restricted, "<message><body>&nbsp;</body></message>");
        yield return Case("UndefinedEntityInAttribute", Restricted, "<message id='&foo;'/>");
        yield return Case("UndefinedEntityCaseDiffers", Restricted, "<message><body>&AMP;</body></message>");
        yield return Case("UndefinedEntityNonAscii", Restricted, "<message><body>&caf\u00E9;</body></message>");

        // Namespace prefixes
        yield return Case("UnboundPrefixOnElement", BadPrefix, "<foo:message/>");
        yield return Case("UnboundPrefixOnChild", BadPrefix, "<message><foo:x/></message>");
        yield return Case("UnboundPrefixOnAttribute", BadPrefix, "<message foo:bar='1'/>");
        yield return Case("PrefixFromSiblingStanza", BadPrefix, "<message xmlns:p='urn:p'/><p:x/>");
        yield return Case("PrefixOutOfScopeAfterChild", BadPrefix, "<message><a xmlns:p='urn:p'/><p:b/></message>");
        yield return Case("PrefixOutOfScopeAfterEmptyChild", BadPrefix, "<message><a xmlns:p='urn:p'><b/></a><c p:x='1'/></message>");
        yield return Case("XmlnsPrefixOnElement", BadPrefix, "<xmlns:message/>");
    }

    /// <summary>Cases about the prolog and stream header: the input is exactly these bytes.</summary>
    private static IEnumerable<TestCaseData> AtStreamStart()
    {
        TestCaseData Case(string name, StreamErrorCondition expected, params object[] parts)
            => new TestCaseData(Bytes(parts), expected).SetName("AtStart_" + name);

        yield return Case("HttpRequest", NotWellFormed, "GET / HTTP/1.1\r\n\r\n");
        yield return Case("BrokenByteOrderMark", NotWellFormed, new byte[] { 0xEF, 0xBB, 0x00 }, "<stream:stream/>");
        yield return Case("TextBeforeHeader", NotWellFormed, "  x<stream:stream xmlns='jabber:client' " + StreamNs + ">");
        yield return Case("EndTagFirst", NotWellFormed, "</stream:stream>");
        yield return Case("CdataInProlog", NotWellFormed, "<![CDATA[x]]>");
        yield return Case("MalformedDeclarationNoVersion", NotWellFormed, "<?xml encoding='UTF-8'?><stream:stream>");
        yield return Case("MalformedDeclarationVersion", NotWellFormed, "<?xml version='2.0'?><stream:stream>");
        yield return Case("MalformedDeclarationOrder", NotWellFormed, "<?xml version='1.0' standalone='yes' encoding='UTF-8'?><stream:stream>");
        yield return Case("MalformedDeclarationQuotes", NotWellFormed, "<?xml version='1.0\"?><stream:stream>");
        yield return Case("MalformedDeclarationStandalone", NotWellFormed, "<?xml version='1.0' standalone='maybe'?><stream:stream>");
        yield return Case("NonAsciiInDeclaration", NotWellFormed, "<?xml version='1.0' encoding='\u00FCtf-8'?>");
        yield return Case("DuplicateHeaderAttribute", NotWellFormed, "<stream:stream xmlns='jabber:client' " + StreamNs + " to='a' to='b'>");

        yield return Case("CommentInProlog", Restricted, "<?xml version='1.0'?><!-- hi --><stream:stream>");
        yield return Case("DoctypeInProlog", Restricted, "<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY x 'y'>]><stream:stream>");
        yield return Case("StylesheetPi", Restricted, "<?xml-stylesheet href='a'?><stream:stream>");
        yield return Case("DeclarationAfterWhitespace", Restricted, "\n<?xml version='1.0'?><stream:stream>");
        yield return Case("SecondDeclaration", Restricted, "<?xml version='1.0'?><?xml version='1.0'?><stream:stream>");
        yield return Case("UndefinedEntityInHeader", Restricted, "<stream:stream xmlns='jabber:client' " + StreamNs + " to='&ent;'>");

        yield return Case("Latin1Declaration", StreamErrorCondition.UnsupportedEncoding, "<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream>");
        yield return Case("Utf16Declaration", StreamErrorCondition.UnsupportedEncoding, "<?xml version=\"1.0\" encoding=\"UTF-16\"?><stream:stream>");
        yield return Case("Utf8WithoutDash", StreamErrorCondition.UnsupportedEncoding, "<?xml version='1.0' encoding='utf8'?><stream:stream>");

        yield return Case("UnboundStreamPrefix", BadPrefix, "<stream:stream xmlns='jabber:client' to='example.com'>");
        yield return Case("UnboundAttributePrefixOnHeader", BadPrefix, "<stream:stream xmlns='jabber:client' " + StreamNs + " foo:bar='x'>");

        yield return Case("WrongStreamNamespace", InvalidNamespace, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams/'>");
        yield return Case("StanzaInsteadOfHeader", InvalidNamespace, "<message to='juliet@example.com'><body>hi</body></message>");
        yield return Case("WrongLocalName", InvalidNamespace, "<stream:streams xmlns='jabber:client' " + StreamNs + ">");
        yield return Case("WrongContentNamespace", InvalidNamespace, "<stream:stream xmlns='jabber:server' " + StreamNs + ">");
        yield return Case("MissingContentNamespace", InvalidNamespace, "<stream:stream " + StreamNs + " to='example.com'>");
        yield return Case("StreamInDefaultNamespace", InvalidNamespace, "<stream xmlns='http://etherx.jabber.org/streams'>");
        yield return Case("XmlPrefixedStream", InvalidNamespace, "<xml:stream xmlns='jabber:client'>");

        yield return Case("EmptyStreamElement", StreamErrorCondition.InvalidXml, "<stream:stream xmlns='jabber:client' " + StreamNs + "/>");
    }

    [TestCaseSource(nameof(InStream))]
    [TestCaseSource(nameof(AtStreamStart))]
    public void EndsWithCondition(byte[] input, StreamErrorCondition expected)
    {
        var outcome = ScanAllWays(input);
        Assert.That(outcome.End, Is.EqualTo($"Error({expected})"), outcome.ToString());
    }

    [Test]
    public void UpstreamLinkRejectsAClientContentNamespace()
    {
        var outcome = ScanAllWays(Utf8("<stream:stream xmlns='jabber:client' " + StreamNs + " to='cm1/link-1'>"), XmlScannerOptions.UpstreamLink);
        Assert.That(outcome.End, Is.EqualTo("Error(InvalidNamespace)"));
    }

    [Test]
    public void WithoutHeaderATopLevelEndTagIsAnError()
    {
        var options = new XmlScannerOptions { ExpectStreamHeader = false };
        var outcome = ScanAllWays(Utf8("<message/></stream:stream>"), options);
        Assert.That(outcome.Frames, Is.EqualTo(new[] { Element("<message/>") }));
        Assert.That(outcome.End, Is.EqualTo("Error(NotWellFormed)"));
    }

    [Test]
    public void WithoutHeaderAnXmlDeclarationIsRestricted()
    {
        var options = new XmlScannerOptions { ExpectStreamHeader = false };
        var outcome = ScanAllWays(Utf8("<?xml version='1.0'?>"), options);
        Assert.That(outcome.End, Is.EqualTo("Error(RestrictedXml)"));
    }
}
