using System.Buffers;
using System.Text;
using ConnMgr.Edge.Web;
using ConnMgr.Protocol.Xml;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Web;

/// <summary>The stream's output cut into RFC 7395 messages, one element each, namespaces declared.</summary>
public sealed class WebOutputFramerTests
{
    private const string Header = "<?xml version='1.0'?><stream:stream from='example.com' id='s1' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

    [TestCase("<message to='a@b'><body>x</body></message>", "<message xmlns='jabber:client' to='a@b'><body>x</body></message>")]
    [TestCase("<iq/>", "<iq xmlns='jabber:client'/>")]
    [TestCase("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")]
    [TestCase("<message to='x' xmlns=\"jabber:client\"/>", "<message to='x' xmlns=\"jabber:client\"/>")]
    [TestCase("<message note='xmlns=nope &gt; >' id=\"a'b\"/>", "<message xmlns='jabber:client' note='xmlns=nope &gt; >' id=\"a'b\"/>")]
    [TestCase("<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>")]
    public void An_element_standing_alone_declares_its_namespace(string element, string expected)
    {
        var output = new ArrayBufferWriter<byte>();
        WebOutputFramer.WriteElement(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(element)), output);
        Assert.That(Encoding.UTF8.GetString(output.WrittenSpan), Is.EqualTo(expected));
    }

    [Test]
    public void The_header_becomes_open_and_a_restart_is_followed()
    {
        var framer = new WebOutputFramer();
        var frames = Frames(framer, Header + "<stream:features/>" + "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        frames.AddRange(Frames(framer, Header + "<stream:features/></stream:stream>"));

        Assert.That(frames, Is.EqualTo(new[]
        {
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.com' id='s1' version='1.0' xml:lang='en'/>",
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>",
            "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.com' id='s1' version='1.0' xml:lang='en'/>",
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>",
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        }));
    }

    [TestCase("chat2.example.com", "wss://chat2.example.com/xmpp-websocket")]
    [TestCase("wss://edge7.example.com/ws", "wss://edge7.example.com/ws")]
    public void See_other_host_becomes_close_with_see_other_uri(string host, string uri)
    {
        var error = $"<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>{host}</see-other-host></stream:error>";
        var output = new ArrayBufferWriter<byte>();

        Assert.That(WebOutputFramer.TryWriteRedirect(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(error)), output), Is.True);
        Assert.That(Encoding.UTF8.GetString(output.WrittenSpan), Is.EqualTo($"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing' see-other-uri='{uri}'/>"));
    }

    [TestCase("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>")]
    [TestCase("<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>")]
    [TestCase("<message><body>see-other-host</body></message>")]
    public void Other_elements_are_no_redirect(string element)
    {
        var output = new ArrayBufferWriter<byte>();
        Assert.That(WebOutputFramer.TryWriteRedirect(new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(element)), output), Is.False);
        Assert.That(output.WrittenCount, Is.Zero);
    }

    private static List<string> Frames(WebOutputFramer framer, string xml)
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(xml));
        var frames = new List<string>();
        while (true)
        {
            var status = framer.Next(buffer, out var consumed, out _, out var frame);
            Assert.That(status, Is.Not.EqualTo(ScanStatus.Error), framer.ErrorText);
            if (status == ScanStatus.NeedMoreData)
            {
                return frames;
            }
            var output = new ArrayBufferWriter<byte>();
            switch (frame.Kind)
            {
                case XmlFrameKind.StreamHeader:
                    WebOutputFramer.WriteOpen(frame.Header!, output);
                    break;
                case XmlFrameKind.Element:
                    WebOutputFramer.WriteElement(frame.Bytes, output);
                    break;
                case XmlFrameKind.StreamEnd:
                    WebOutputFramer.WriteClose(output);
                    break;
            }
            frames.Add(Encoding.UTF8.GetString(output.WrittenSpan));
            buffer = buffer.Slice(consumed);
        }
    }
}
