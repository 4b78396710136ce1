using ConnMgr.Protocol.Xml;

namespace ConnMgr.Core.Stanzas;

/// <summary>Message types of RFC 6121 5.2.2; an absent type is <see cref="Normal"/>.</summary>
internal enum MessageType : byte { Normal, Chat, Groupchat, Headline, Error, Invalid }

/// <summary>Presence types of RFC 6121 4.7.1; an absent type is <see cref="Available"/>.</summary>
internal enum PresenceType : byte { Available, Unavailable, Subscribe, Subscribed, Unsubscribe, Unsubscribed, Probe, Error, Invalid }


internal static class MessageTypes
{
    public static MessageType Of(scoped in XmlElementReader message)
    {
        if (!message.TryGetAttribute("type"u8, out var type))
        {
            return MessageType.Normal;
        }
        return type switch
        {
            _ when type.SequenceEqual("chat"u8) => MessageType.Chat,
            _ when type.SequenceEqual("normal"u8) => MessageType.Normal,
            _ when type.SequenceEqual("groupchat"u8) => MessageType.Groupchat,
            _ when type.SequenceEqual("headline"u8) => MessageType.Headline,
            _ when type.SequenceEqual("error"u8) => MessageType.Error,
            _ => MessageType.Invalid,
        };
    }
}

internal static class PresenceTypes
{
    public static PresenceType Of(scoped in XmlElementReader presence)
    {
        if (!presence.TryGetAttribute("type"u8, out var type))
        {
            return PresenceType.Available;
        }
        return type switch
        {
            _ when type.SequenceEqual("unavailable"u8) => PresenceType.Unavailable,
            _ when type.SequenceEqual("subscribe"u8) => PresenceType.Subscribe,
            _ when type.SequenceEqual("subscribed"u8) => PresenceType.Subscribed,
            _ when type.SequenceEqual("unsubscribe"u8) => PresenceType.Unsubscribe,
            _ when type.SequenceEqual("unsubscribed"u8) => PresenceType.Unsubscribed,
            _ when type.SequenceEqual("probe"u8) => PresenceType.Probe,
            _ when type.SequenceEqual("error"u8) => PresenceType.Error,
            _ => PresenceType.Invalid,
        };
    }
}
