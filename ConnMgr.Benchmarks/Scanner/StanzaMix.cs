using System.Text;

namespace ConnMgr.Benchmarks.Scanner;

/// <summary>
/// A client's traffic as the edge sees it: chat messages with bodies and chat states, presences with
/// caps and non-ASCII statuses, roster and disco IQs, an occasional CDATA body, entities, and a
/// whitespace keepalive now and then. Top-level elements only (no stream header), so that an XmlReader
/// in fragment mode can read the same bytes.
/// </summary>
internal static class StanzaMix
{
    private static readonly string[] s_templates =
    [
        "<message to='romeo@example.net/orchard' from='juliet@example.com/balcony' type='chat' id='m{0}' xml:lang='en'><body>Wherefore art thou, Romeo? Deny thy father and refuse thy name; or, if thou wilt not, be but sworn my love.</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>",
        "<presence from='juliet@example.com/balcony' id='p{0}'><show>away</show><status>\u0412 \u043F\u0443\u0442\u0438 \u2014 \u65C5\u884C\u4E2D \U0001F6EB back at 5</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='q07IKJEyjvHSyhy//CH0CxmKi8w='/></presence>",
        "<message to='nurse@example.com' type='chat' id='m{0}'><body>Tom &amp; Jerry said &quot;3 &lt; 5&quot; &#8212; caf\u00E9 cr\u00E8me br\u00FBl\u00E9e, na\u00EFve \u00FCber</body><markable xmlns='urn:xmpp:chat-markers:0'/></message>",
        "<iq type='result' id='r{0}' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver14'><item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group><group>Verona</group></item><item jid='nurse@example.com' name='Nurse' subscription='to'/><item jid='benvolio@example.net' subscription='from'><group>Montague</group></item></query></iq>",
        "<iq type='get' id='d{0}' to='example.com' from='juliet@example.com/balcony'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        "<iq type='result' id='d{0}' from='example.com' to='juliet@example.com/balcony'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='server' type='im' name='Example'/><feature var='http://jabber.org/protocol/disco#info'/><feature var='http://jabber.org/protocol/disco#items'/><feature var='urn:xmpp:ping'/><feature var='urn:xmpp:carbons:2'/><feature var='urn:xmpp:mam:2'/></query></iq>",
        "<presence to='romeo@example.net' type='subscribe' id='s{0}'/>",
        "<message to='romeo@example.net' type='chat' id='m{0}'><body><![CDATA[if (a < b && c > d) {{ return x[y[0]]; }}]]></body><x xmlns:oob='jabber:x:oob'><oob:url>https://example.com/share/a.png?size=1&amp;v=2</oob:url></x></message>",
        "<iq type='get' id='ping{0}' to='example.com'><ping xmlns='urn:xmpp:ping'/></iq>",
        "<message to='romeo@example.net' type='chat' id='m{0}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
    ];

    public static byte[] Build(int count)
    {
        var text = new StringBuilder();
        for (var i = 0; i < count; i++)
        {
            text.AppendFormat(s_templates[i % s_templates.Length], i);
            if (i % 16 == 15)
                text.Append('\n'); // keepalive
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }
}
