namespace ConnMgr.Protocol;

/// <summary>Namespace URIs used on client streams and on the connection-manager link.</summary>
public static class XmppNamespaces
{
    public const string Stream = "http://etherx.jabber.org/streams";
    public const string Client = "jabber:client";
    public const string Server = "jabber:server";
    public const string ConnectionManagerStream = "jabber:connectionmanager";
    public const string ConnectionManager = "http://jabber.org/protocol/connectionmanager";
    public const string ConnectionManagerErrors = "http://jabber.org/protocol/connectionmanager#errors";
    public const string Framing = "urn:ietf:params:xml:ns:xmpp-framing";
    public const string Streams = "urn:ietf:params:xml:ns:xmpp-streams";
    public const string Stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
    public const string Tls = "urn:ietf:params:xml:ns:xmpp-tls";
    public const string Sasl = "urn:ietf:params:xml:ns:xmpp-sasl";
    public const string Bind = "urn:ietf:params:xml:ns:xmpp-bind";
    public const string Session = "urn:ietf:params:xml:ns:xmpp-session";
    public const string Roster = "jabber:iq:roster";
    public const string Ping = "urn:xmpp:ping";
    public const string DiscoInfo = "http://jabber.org/protocol/disco#info";
    public const string DiscoItems = "http://jabber.org/protocol/disco#items";
    public const string Delay = "urn:xmpp:delay";
    public const string IqAuthFeature = "http://jabber.org/features/iq-auth";
    public const string IqRegisterFeature = "http://jabber.org/features/iq-register";
    public const string CompressFeature = "http://jabber.org/features/compress";
    public const string Xml = "http://www.w3.org/XML/1998/namespace";
}
