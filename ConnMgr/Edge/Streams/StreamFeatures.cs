using System.Buffers;
using ConnMgr.Edge.Upstream;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Edge.Streams;

/// <summary>
/// The <c>&lt;stream:features/&gt;</c> a client is offered at each stage, synthesised from the
/// core's configuration IQ (spec 7.2, 3.7) and written once per configuration, not per client.
/// </summary>
/// <remarks>
/// <para>Rules beyond the table of spec 7.2, all from the edge owning client TLS (spec 0.1 point 8):</para>
/// <list type="bullet">
/// <item>STARTTLS is offered whenever the edge can do it, even if the core reports its c2s policy as
/// disabled: the edge never has a reason to keep a client in clear. <c>&lt;required/&gt;</c> follows
/// the core's policy; when required and not done, STARTTLS is the only feature (RFC 6120 5.3.1).</item>
/// <item>PLAIN is offered on encrypted streams only, as Prosody and ejabberd do by default; so are
/// the iq-auth (XEP-0078) and register (XEP-0077) features, whose IQs carry passwords too.</item>
/// <item>The core's list is already free of <c>EXTERNAL</c> and <c>*-PLUS</c> (spec 7.2): Openfire
/// sees a CM-hosted session as unencrypted, without certificate or channel binding.</item>
/// <item>No stream management, CSI or compression: the edge does not implement them (spec 7.2).</item>
/// </list>
/// </remarks>
internal sealed class StreamFeatures
{
    private const string Plain = "PLAIN";

    private StreamFeatures(ClientStreamConfiguration configuration)
    {
        Configuration = configuration;
        StartTlsRequired = Build((ref XmlBufferWriter w) => StartTls(ref w, required: true));
        var clearMechanisms = Mechanisms(configuration, includePlain: false);
        ClearWithStartTls = Build((ref XmlBufferWriter w) =>
        {
            StartTls(ref w, configuration.TlsRequired);
            clearMechanisms(ref w);
        });
        ClearWithoutStartTls = Build(clearMechanisms);
        var secureMechanisms = Mechanisms(configuration, includePlain: true);
        Secure = Build((ref XmlBufferWriter w) =>
        {
            secureMechanisms(ref w);
            if (configuration.IqAuth)
            {
                Empty(ref w, "auth"u8, XmppNamespaces.IqAuthFeature);
            }
            if (configuration.Register)
            {
                Empty(ref w, "register"u8, XmppNamespaces.IqRegisterFeature);
            }
        });
    }

    private delegate void Content(ref XmlBufferWriter writer);

    /// <summary>After SASL success (RFC 6120 7.2; the session feature as Openfire offers it, spec 7.2).</summary>
    public static byte[] Authenticated { get; } = Build((ref XmlBufferWriter w) =>
    {
        Empty(ref w, "bind"u8, XmppNamespaces.Bind);
        w.StartElement("session"u8, XmppNamespaces.Session);
        w.StartElement("optional"u8);
        w.EndElement();
        w.EndElement();
    });

    public ClientStreamConfiguration Configuration { get; }

    /// <summary>Clear stream, TLS required by the core: STARTTLS alone.</summary>
    public byte[] StartTlsRequired { get; }

    /// <summary>Clear stream, TLS optional: STARTTLS and the mechanisms without PLAIN.</summary>
    public byte[] ClearWithStartTls { get; }

    /// <summary>Clear stream that cannot be upgraded (no certificate): the mechanisms without PLAIN.</summary>
    public byte[] ClearWithoutStartTls { get; }

    /// <summary>Encrypted stream: every mechanism, iq-auth and register as the core reports them.</summary>
    public byte[] Secure { get; }

    public static StreamFeatures For(ClientStreamConfiguration configuration) => new(configuration);

    /// <summary>Whether the core lists the mechanism an <c>&lt;auth/&gt;</c> asks for (names are case-sensitive, RFC 4422 3.1).</summary>
    public bool Offers(scoped in XmlElementReader auth)
    {
        foreach (var name in Configuration.Mechanisms)
        {
            if (auth.AttributeEquals("mechanism"u8, name))
            {
                return true;
            }
        }
        return false;
    }

    public static bool AsksForPlain(scoped in XmlElementReader auth) => auth.AttributeEquals("mechanism"u8, Plain);

    private static Content Mechanisms(ClientStreamConfiguration configuration, bool includePlain) => (ref XmlBufferWriter w) =>
    {
        var any = false;
        foreach (var mechanism in configuration.Mechanisms)
        {
            if (!includePlain && mechanism == Plain)
            {
                continue;
            }
            if (!any)
            {
                w.StartElement("mechanisms"u8, XmppNamespaces.Sasl);
                any = true;
            }
            w.StartElement("mechanism"u8);
            w.Text(mechanism);
            w.EndElement();
        }
        if (any)
        {
            w.EndElement();
        }
    };

    private static void StartTls(ref XmlBufferWriter w, bool required)
    {
        w.StartElement("starttls"u8, XmppNamespaces.Tls);
        if (required)
        {
            w.StartElement("required"u8);
            w.EndElement();
        }
        w.EndElement();
    }

    private static void Empty(ref XmlBufferWriter w, ReadOnlySpan<byte> name, string namespaceUri)
    {
        w.StartElement(name, namespaceUri);
        w.EndElement();
    }

    private static byte[] Build(Content content)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        var writer = new XmlBufferWriter(buffer);
        writer.StartElement("stream:features"u8);
        content(ref writer);
        writer.EndAll();
        return buffer.WrittenSpan.ToArray();
    }
}
