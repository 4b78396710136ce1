namespace ConnMgr.Protocol.Xml;

/// <summary>IQ types of RFC 6120 8.2.3; a missing or unknown type is <see cref="Invalid"/>.</summary>
public enum IqType : byte { Get, Set, Result, Error, Invalid }

/// <summary>Reads an IQ's type without allocating; the edge's checks and the core's handling share it.</summary>
public static class IqTypes
{
    public static IqType Of(scoped in XmlElementReader iq)
    {
        if (!iq.TryGetAttribute("type"u8, out var type))
        {
            return IqType.Invalid;
        }
        return type switch
        {
            _ when type.SequenceEqual("get"u8) => IqType.Get,
            _ when type.SequenceEqual("set"u8) => IqType.Set,
            _ when type.SequenceEqual("result"u8) => IqType.Result,
            _ when type.SequenceEqual("error"u8) => IqType.Error,
            _ => IqType.Invalid,
        };
    }
}
