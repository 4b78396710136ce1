using ConnMgr.Buffers;
using System.Security.Cryptography;
using ConnMgr.Core.Stanzas;
using ConnMgr.Protocol;
using ConnMgr.Protocol.Xml;

namespace ConnMgr.Core.Sessions;

/// <summary>
/// IQs (RFC 6120 8.2.3): those for the server (resource binding, session, roster, ping, service
/// discovery) are answered here; those for another user's full JID are passed on with the
/// sender's address stamped (RFC 6121 8.5.3.1); the rest get the stanza error RFC 6121 8.5
/// prescribes.
/// </summary>
internal sealed partial class SessionProcessor
{
    /// <summary>Characters of a server-generated resource (RFC 6120 7.6.2.1): 16 of base 36, about 82 bits.</summary>
    private const int GeneratedResourceLength = 16;

    private enum ServerIq : byte { Unsupported, Bind, Session, Roster, Ping, DiscoInfo, DiscoItems }

    private async Task HandleIqAsync(ClientSession session, ReadOnlyMemory<byte> bytes)
    {
        IqType type;
        ServerIq request;
        Jid? to;
        {
            var iq = new XmlElementReader(bytes.Span, s_clientScope);
            type = IqTypes.Of(iq);
            var children = 0;
            XmlElementReader child = default;
            foreach (var c in iq.Children)
            {
                if (children++ == 0)
                {
                    child = c;
                }
            }
            // RFC 6120 8.2.3: an id always; get and set carry exactly one child, result at most one.
            var wellFormed = type != IqType.Invalid && iq.HasAttribute("id"u8)
                && (type is IqType.Result or IqType.Error || children == 1)
                && (type != IqType.Result || children <= 1);
            if (!wellFormed)
            {
                ReplyError(session, bytes.Span, StanzaErrorCondition.BadRequest);
                return;
            }
            if (!TryGetJid(iq, "to"u8, out to, out var present) && present)
            {
                ReplyError(session, bytes.Span, StanzaErrorCondition.JidMalformed);
                return;
            }
            request = children == 1 ? Classify(child) : ServerIq.Unsupported;
        }

        var account = session.Account!;
        var toServer = to is null || (to.Local is null && to.Resource is null && to.Domain == _domain);
        var toOwnAccount = to is { Local: not null, Resource: null } && to.Domain == _domain && to.Local == account.User;

        if (session.State != SessionState.Bound)
        {
            if (request == ServerIq.Bind && toServer && type == IqType.Set)
            {
                await BindAsync(session, bytes);
                return;
            }
            if (!toServer && !toOwnAccount)
            {
                await Refuse(session, "iq to another entity before resource binding");
                return;
            }
        }

        if (type is IqType.Result or IqType.Error)
        {
            // Answers to the server's roster pushes and pings end here; others go to a full JID.
            if (!toServer && !toOwnAccount && to!.Resource is not null && to.Domain == _domain)
            {
                RouteToFullJid(session, bytes.Span, to, answerIfAbsent: false);
            }
            return;
        }

        if (toServer || toOwnAccount)
        {
            await HandleServerIqAsync(session, bytes, type, request, toServer);
            return;
        }
        if (to!.Domain != _domain)
        {
            // No server-to-server connections: every foreign domain is unreachable (RFC 6120 8.3.3.18).
            ReplyError(session, bytes.Span, StanzaErrorCondition.RemoteServerNotFound);
            return;
        }
        if (to.Resource is not null && to.Local is not null)
        {
            RouteToFullJid(session, bytes.Span, to, answerIfAbsent: true);
            return;
        }
        // Another user's bare JID or a JID of the domain with a resource: the server would answer
        // for the account, and it implements no such namespace (RFC 6121 8.5.2.1.3, 8.5.1).
        ReplyError(session, bytes.Span, StanzaErrorCondition.ServiceUnavailable);
    }

    private static ServerIq Classify(scoped in XmlElementReader child)
    {
        var name = child.LocalName;
        if (name.SequenceEqual("bind"u8) && child.NamespaceIs(XmppNamespaces.Bind))
        {
            return ServerIq.Bind;
        }
        if (name.SequenceEqual("session"u8) && child.NamespaceIs(XmppNamespaces.Session))
        {
            return ServerIq.Session;
        }
        if (name.SequenceEqual("query"u8))
        {
            if (child.NamespaceIs(XmppNamespaces.Roster))
            {
                return ServerIq.Roster;
            }
            if (child.NamespaceIs(XmppNamespaces.DiscoInfo))
            {
                return ServerIq.DiscoInfo;
            }
            if (child.NamespaceIs(XmppNamespaces.DiscoItems))
            {
                return ServerIq.DiscoItems;
            }
        }
        if (name.SequenceEqual("ping"u8) && child.NamespaceIs(XmppNamespaces.Ping))
        {
            return ServerIq.Ping;
        }
        return ServerIq.Unsupported;
    }

    /// <summary>An IQ for another user's resource, passed on with <c>from</c> stamped; service-unavailable when it is not connected (RFC 6121 8.5.3.2.3).</summary>
    private void RouteToFullJid(ClientSession session, ReadOnlySpan<byte> bytes, Jid to, bool answerIfAbsent)
    {
        var target = _registry.FindAccount(to.Local)?.FindResource(to.Resource);
        if (target is null)
        {
            if (answerIfAbsent)
            {
                ReplyError(session, bytes, StanzaErrorCondition.ServiceUnavailable);
            }
            return;
        }
        var iq = new XmlElementReader(bytes, s_clientScope);
        using var buffer = PooledBufferWriter.Rent(bytes.Length + 128);
        StanzaWriting.WriteStamped(buffer, iq, session.Jid!.ToString(), to: null);
        Deliver(target, buffer.WrittenSpan);
    }

    private Task HandleServerIqAsync(ClientSession session, ReadOnlyMemory<byte> bytes, IqType type, ServerIq request, bool toServer)
    {
        switch (request)
        {
            case ServerIq.Roster:
                return HandleRosterIqAsync(session, bytes, type);
            case ServerIq.Bind:
                // One resource per stream (RFC 6120 7.7.1: further binds are not allowed).
                ReplyError(session, bytes.Span, StanzaErrorCondition.NotAllowed);
                return Task.CompletedTask;
            case ServerIq.Session when type == IqType.Set:
            case ServerIq.Ping when type == IqType.Get:
                // RFC 3921 3 session establishment is a no-op today (RFC 6121 appendix E); ping is XEP-0199 4.
                WriteIqResult(session, bytes.Span, 0, static (ref XmlBufferWriter _, int _) => { });
                return Task.CompletedTask;
            case ServerIq.DiscoInfo when type == IqType.Get:
                ReplyDiscoInfo(session, bytes.Span, toServer);
                return Task.CompletedTask;
            case ServerIq.DiscoItems when type == IqType.Get:
                ReplyDiscoItems(session, bytes.Span);
                return Task.CompletedTask;
            case ServerIq.Unsupported:
                // RFC 6120 8.4: an IQ in a namespace the server does not know.
                ReplyError(session, bytes.Span, StanzaErrorCondition.ServiceUnavailable);
                return Task.CompletedTask;
            default:
                // A known namespace with an operation it does not support (a set of disco or ping).
                ReplyError(session, bytes.Span, StanzaErrorCondition.FeatureNotImplemented);
                return Task.CompletedTask;
        }
    }

    private void ReplyDiscoInfo(ClientSession session, ReadOnlySpan<byte> bytes, bool toServer)
    {
        if (HasNode(bytes))
        {
            ReplyError(session, bytes, StanzaErrorCondition.ItemNotFound);
            return;
        }
        WriteIqResult(session, bytes, toServer, static (ref XmlBufferWriter writer, bool server) =>
        {
            writer.StartElement("query"u8, XmppNamespaces.DiscoInfo);
            writer.StartElement("identity"u8);
            if (server)
            {
                // XEP-0030 4.1 and the registry: category "server", type "im".
                writer.Attribute("category"u8, "server"u8);
                writer.Attribute("type"u8, "im"u8);
                writer.Attribute("name"u8, "ConnMgr embedded core"u8);
            }
            else
            {
                writer.Attribute("category"u8, "account"u8);
                writer.Attribute("type"u8, "registered"u8);
            }
            writer.EndElement();
            WriteFeature(ref writer, XmppNamespaces.DiscoInfo);
            if (server)
            {
                WriteFeature(ref writer, XmppNamespaces.DiscoItems);
                WriteFeature(ref writer, XmppNamespaces.Ping);
                WriteFeature(ref writer, XmppNamespaces.Roster);
                // XEP-0160 offline storage.
                WriteFeature(ref writer, "msgoffline");
            }
            writer.EndElement();
        });
    }

    private static void WriteFeature(ref XmlBufferWriter writer, string feature)
    {
        writer.StartElement("feature"u8);
        writer.Attribute("var"u8, feature);
        writer.EndElement();
    }

    private void ReplyDiscoItems(ClientSession session, ReadOnlySpan<byte> bytes)
    {
        if (HasNode(bytes))
        {
            ReplyError(session, bytes, StanzaErrorCondition.ItemNotFound);
            return;
        }
        // No components or services: an empty list (XEP-0030 4.2).
        WriteIqResult(session, bytes, 0, static (ref XmlBufferWriter writer, int _) =>
        {
            writer.StartElement("query"u8, XmppNamespaces.DiscoItems);
            writer.EndElement();
        });
    }

    private static bool HasNode(ReadOnlySpan<byte> bytes)
    {
        var iq = new XmlElementReader(bytes, s_clientScope);
        return iq.TryGetFirstChild(out var query) && query.HasAttribute("node"u8);
    }

    /// <summary>RFC 6120 7.6: bind the requested resource, or one of ours; a clash replaces the older session (7.7.2.2).</summary>
    private async Task BindAsync(ClientSession session, ReadOnlyMemory<byte> bytes)
    {
        string? requested;
        {
            var iq = new XmlElementReader(bytes.Span, s_clientScope);
            var bind = iq.FirstChild;
            requested = bind.TryGetChild("resource"u8, XmppNamespaces.Bind, out var resource) ? resource.GetText().Trim() : null;
        }
        var account = session.Account!;
        Jid jid;
        try
        {
            jid = string.IsNullOrEmpty(requested)
                ? Jid.Create(account.User, _domain, GenerateResource())
                : Jid.Create(account.User, _domain, requested);
        }
        catch (FormatException)
        {
            // RFC 6120 7.7.2.1: a resourcepart that cannot be prepared.
            ReplyError(session, bytes.Span, StanzaErrorCondition.BadRequest);
            return;
        }
        session.Jid = jid;
        session.State = SessionState.Bound;
        _registry.MarkBound(session);
        var replaced = account.Bind(session);
        if (replaced is not null)
        {
            // The older session goes first, with its unavailable presence, before this one can send any.
            await replaced.RequestTermination(new TerminationRequest(SessionEndReason.ResourceConflict, StreamErrorCondition.Conflict,
                "Replaced by a new session with the same resource"));
        }
        WriteIqResult(session, bytes.Span, jid.ToString(), static (ref XmlBufferWriter writer, string full) =>
        {
            writer.StartElement("bind"u8, XmppNamespaces.Bind);
            writer.StartElement("jid"u8);
            writer.Text(full);
            writer.EndElement();
            writer.EndElement();
        });
        CoreLog.Bound(_logger, session.StreamId, jid.ToString());
    }

    private static string GenerateResource()
    {
        Span<char> resource = stackalloc char[GeneratedResourceLength];
        RandomNumberGenerator.GetItems("0123456789abcdefghijklmnopqrstuvwxyz", resource);
        return new string(resource);
    }

    private delegate void BodyWriter<in TState>(ref XmlBufferWriter writer, TState state);

    /// <summary>
    /// <c>&lt;iq type='result' id from=(the request's to) to=(the sender)&gt;body&lt;/iq&gt;</c>
    /// written straight into the session's route.
    /// </summary>
    private void WriteIqResult<TState>(ClientSession session, ReadOnlySpan<byte> requestBytes, TState state, BodyWriter<TState> body)
    {
        var link = session.CurrentLink();
        if (link is null)
        {
            return;
        }
        var request = new XmlElementReader(requestBytes, s_clientScope);
        using var scope = link.Output.Begin();
        var writer = new XmlBufferWriter(scope.Output);
        Links.LinkWriting.StartRoute(ref writer, session.StreamId, _domain, session.Group.Domain);
        writer.StartElement("iq"u8);
        writer.Attribute("type"u8, "result"u8);
        if (request.TryGetAttribute("id"u8, out var id))
        {
            writer.RawAttribute("id"u8, id);
        }
        if (request.TryGetAttribute("to"u8, out var to))
        {
            writer.RawAttribute("from"u8, to);
        }
        writer.OptionalAttribute("to"u8, SenderAddress(session));
        body(ref writer, state);
        writer.EndElement();
        writer.EndElement();
        scope.Complete();
    }
}
