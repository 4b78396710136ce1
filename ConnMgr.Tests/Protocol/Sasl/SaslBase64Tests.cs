using System.Buffers;
using System.Text;
using ConnMgr.Protocol.Sasl;
using NUnit.Framework;

namespace ConnMgr.Tests.Protocol.Sasl;

public sealed class SaslBase64Tests
{
    [Test]
    public void EmptyTextIsNoData()
    {
        Assert.That(SaslBase64.TryDecode(""u8, out var payload), Is.True);
        using (payload)
        {
            Assert.That(payload.IsPresent, Is.False);
            Assert.That(payload.Span.Length, Is.Zero);
        }
    }

    [Test]
    public void EqualsSignIsEmptyData()
    {
        Assert.That(SaslBase64.TryDecode("="u8, out var payload), Is.True);
        using (payload)
        {
            Assert.That(payload.IsPresent, Is.True);
            Assert.That(payload.Span.Length, Is.Zero);
        }
    }

    [TestCase("dXNlcg==", "user")]
    [TestCase("biws", "n,,")]
    [TestCase("AHVzZXIAcGVuY2ls", "\0user\0pencil")]
    public void Decodes(string text, string expected)
    {
        Assert.That(SaslBase64.TryDecode(Encoding.ASCII.GetBytes(text), out var payload), Is.True);
        using (payload)
        {
            Assert.That(payload.IsPresent, Is.True);
            Assert.That(Encoding.UTF8.GetString(payload.Span), Is.EqualTo(expected));
        }
    }

    [TestCase("dXNlcg", TestName = "missing padding")]
    [TestCase("dXNl cg==", TestName = "space")]
    [TestCase("dXNl\ncg==", TestName = "line break")]
    [TestCase("dXNlcg=a", TestName = "padding in the middle")]
    [TestCase("====", TestName = "only padding")]
    [TestCase("==", TestName = "two equals signs")]
    [TestCase("dXNl-_==", TestName = "base64url alphabet")]
    public void RefusesBadBase64(string text)
        => Assert.That(SaslBase64.TryDecode(Encoding.ASCII.GetBytes(text), out _), Is.False);

    [TestCase("", "=")]
    [TestCase("user", "dXNlcg==")]
    [TestCase("v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", "dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9")]
    public void Encodes(string data, string expected)
    {
        var writer = new ArrayBufferWriter<byte>();
        SaslBase64.Encode(Encoding.UTF8.GetBytes(data), writer);
        Assert.That(Encoding.ASCII.GetString(writer.WrittenSpan), Is.EqualTo(expected));
        Assert.That(SaslBase64.GetEncodedLength(data.Length), Is.EqualTo(expected.Length));
    }

    [Test]
    public void DisposedPayloadIsEmpty()
    {
        SaslBase64.TryDecode("dXNlcg=="u8, out var payload);
        payload.Dispose();
        Assert.That(payload.Span.Length, Is.Zero);
        payload.Dispose();
    }
}
