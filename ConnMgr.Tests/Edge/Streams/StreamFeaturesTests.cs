using System.Text;
using ConnMgr.Edge.Streams;
using ConnMgr.Edge.Upstream;
using NUnit.Framework;

namespace ConnMgr.Tests.Edge.Streams;

/// <summary>Stream features synthesised from the core's configuration IQ (spec 7.2).</summary>
public sealed class StreamFeaturesTests
{
    private static readonly ClientStreamConfiguration s_openfire = new()
    {
        TlsOffered = true,
        TlsRequired = false,
        Mechanisms = ["PLAIN", "SCRAM-SHA-1", "ANONYMOUS"],
        IqAuth = true,
        Register = true,
        CompressionOffered = true,
    };

    [Test]
    public void In_clear_starttls_and_every_mechanism_but_plain()
    {
        Assert.That(Text(StreamFeatures.For(s_openfire).ClearWithStartTls), Is.EqualTo(
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
            + "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>ANONYMOUS</mechanism></mechanisms>"
            + "</stream:features>"));
    }

    [Test]
    public void Tls_required_and_not_done_offers_starttls_alone()
    {
        var features = StreamFeatures.For(s_openfire with { TlsRequired = true });
        Assert.That(Text(features.StartTlsRequired), Is.EqualTo(
            "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"));
    }

    [Test]
    public void Encrypted_every_mechanism_iq_auth_and_register_but_never_compression()
    {
        Assert.That(Text(StreamFeatures.For(s_openfire).Secure), Is.EqualTo(
            "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            + "<mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism><mechanism>ANONYMOUS</mechanism></mechanisms>"
            + "<auth xmlns='http://jabber.org/features/iq-auth'/><register xmlns='http://jabber.org/features/iq-register'/></stream:features>"));
    }

    [Test]
    public void Without_a_certificate_no_starttls_and_still_no_plain()
    {
        Assert.That(Text(StreamFeatures.For(s_openfire with { Mechanisms = ["PLAIN"] }).ClearWithoutStartTls), Is.EqualTo("<stream:features/>"));
    }

    [Test]
    public void After_authentication_bind_and_optional_session()
    {
        Assert.That(Text(StreamFeatures.Authenticated), Is.EqualTo(
            "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
            + "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>"));
    }

    [Test]
    public void Mechanism_names_from_the_core_are_escaped()
    {
        var features = StreamFeatures.For(new ClientStreamConfiguration { Mechanisms = ["X-<odd>"] });
        Assert.That(Text(features.ClearWithoutStartTls), Does.Contain("<mechanism>X-&lt;odd&gt;</mechanism>"));
    }

    private static string Text(byte[] bytes) => Encoding.UTF8.GetString(bytes);
}
