using Microsoft.Extensions.Logging;

namespace ConnMgr.Core.Storage;

/// <summary>Log events of the store, ids 4100-4199.</summary>
internal static partial class StoreLog
{
    [LoggerMessage(EventId = 4100, Level = LogLevel.Information, Message = "Opened the store {Path} (schema version {Version})")]
    public static partial void Opened(ILogger logger, string path, int version);

    [LoggerMessage(EventId = 4101, Level = LogLevel.Information, Message = "Migrated the store {Path} from schema version {From} to {To}")]
    public static partial void Migrated(ILogger logger, string path, int from, int to);

    [LoggerMessage(EventId = 4102, Level = LogLevel.Error, Message = "A write transaction of {Count} requests failed and was rolled back")]
    public static partial void BatchFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(EventId = 4103, Level = LogLevel.Warning, Message = "A store write failed and was rolled back alone; the rest of its transaction commits")]
    public static partial void RequestFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4104, Level = LogLevel.Critical, Message = "The store's writer thread stopped on an unexpected error; writes now fail")]
    public static partial void WriterCrashed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4105, Level = LogLevel.Information, Message = "User {User} was removed from the store")]
    public static partial void UserRemoved(ILogger logger, string user);

    [LoggerMessage(EventId = 4106, Level = LogLevel.Information, Message = "The password of user {User} was changed")]
    public static partial void PasswordChanged(ILogger logger, string user);

    [LoggerMessage(EventId = 4107, Level = LogLevel.Warning, Message = "Polling the store for user changes failed; retrying at the next tick")]
    public static partial void ChangePollFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4108, Level = LogLevel.Error, Message = "A handler of the user-change event for {User} threw")]
    public static partial void ChangeHandlerFailed(ILogger logger, string user, Exception exception);
}
