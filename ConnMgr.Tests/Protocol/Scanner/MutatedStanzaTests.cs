using System.Text;
using ConnMgr.Protocol.Xml;
using ConnMgr.Tests.Support;
using NUnit.Framework;
using static ConnMgr.Tests.Protocol.Scanner.ScanHarness;

namespace ConnMgr.Tests.Protocol.Scanner;

/// <summary>
/// The fast path may only accept what the state machine accepts, and must report the same error where it
/// does not. Realistic stanzas with a few random edits (bytes that matter to XML put in, taken out or
/// replaced) are scanned whole, where the fast path reads them through its windows, and one byte per
/// segment, where every tag goes to the state machine; the transcripts must agree. The seeds are fixed, so
/// a failure names an input that fails again.
/// </summary>
[TestFixture]
public sealed class MutatedStanzaTests
{
    private const int CasesPerSeed = 10000;

    private static readonly string[] Stanzas =
    [
        "<message to='romeo@example.net/orchard' from='juliet@example.com/balcony' type='chat' id='m1' xml:lang='en'><body>Wherefore art thou, Romeo? Deny thy father and refuse thy name.</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>",
        "<presence from='juliet@example.com/balcony' id='p2'><show>away</show><status>\u0412 \u043F\u0443\u0442\u0438 \u2014 \u65C5\u884C\u4E2D \U0001F6EB back</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>",
        "<iq type='result' id='r3' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver14'><item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item><item jid=\"nurse@example.com\" name=\"Nurse\" subscription=\"to\"/></query></iq>",
        "<message to='romeo@example.net' type='chat' id='m4'><body>Tom &amp; Jerry &quot;3 &lt; 5&quot; &#8212; caf\u00E9 &#x41;</body><x xmlns:oob='jabber:x:oob'><oob:url>https://example.com/a.png?size=1&amp;v=2</oob:url></x><![CDATA[a < b]]></message>",
        "<p:m xmlns:p='urn:p' p:a='1' xml:lang='en' q:b='2' xmlns:q='urn:q' c='it&apos;s' d=\"x'y\" e = 'f'><p:n p:c='3'/><o xmlns='urn:o' a='1' b='2' c='3' d='4' e='5' f='6' g='7' h='8' i='9'/></p:m>",
    ];

    // Bytes that change what a tag means, and a few that make UTF-8 or a character illegal.
    private static readonly byte[] Interesting = Encoding.ASCII.GetBytes("<>&;'\"=/: \t\n\r#x]![-._a1")
        .Concat(new byte[] { 0x00, 0x01, 0x80, 0xC3, 0xA9, 0xED, 0xEF, 0xBF, 0xFF }).ToArray();

    [TestCase(1), TestCase(2), TestCase(3), TestCase(4)]
    public void WholeAndOneBytePerSegmentAgree(int seed)
    {
        var random = new Random(seed);
        var options = new XmlScannerOptions { ExpectStreamHeader = false, MaxAttributes = 10, MaxDepth = 6, MaxNameLength = 24 };
        var tail = Utf8(new string(' ', 80));
        var errors = 0;
        for (var n = 0; n < CasesPerSeed; n++)
        {
            var input = Mutate(Utf8(Stanzas[random.Next(Stanzas.Length)]), random);
            var data = Bytes(input, tail);
            var whole = RunAtOnce(options, SequenceFactory.Single(data)).ToString();
            var slow = RunAtOnce(options, SequenceFactory.OneBytePerSegment(data)).ToString();
            if (whole != slow)
                Assert.That(whole, Is.EqualTo(slow), "input: " + Encoding.Latin1.GetString(input));
            if (whole.Contains("=> Error", StringComparison.Ordinal))
                errors++;
        }
        // The edits must produce both outcomes, or the comparison proves little.
        Assert.That(errors, Is.InRange(CasesPerSeed / 10, CasesPerSeed * 9 / 10));
    }

    private static byte[] Mutate(byte[] stanza, Random random)
    {
        var bytes = new List<byte>(stanza);
        var edits = random.Next(1, 4);
        for (var e = 0; e < edits; e++)
        {
            var at = random.Next(bytes.Count);
            var b = Interesting[random.Next(Interesting.Length)];
            switch (random.Next(4))
            {
                case 0:
                    bytes[at] = b;
                    break;
                case 1:
                    bytes.Insert(at, b);
                    break;
                case 2:
                    bytes.RemoveAt(at);
                    break;
                default:
                    // A copy of a short run elsewhere: duplicate attributes, repeated tags.
                    var length = Math.Min(random.Next(1, 24), bytes.Count - at);
                    bytes.InsertRange(random.Next(bytes.Count), bytes.GetRange(at, length));
                    break;
            }
        }
        return bytes.ToArray();
    }
}
