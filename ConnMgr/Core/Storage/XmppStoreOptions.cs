using ConnMgr.Protocol.Sasl;

namespace ConnMgr.Core.Storage;

/// <summary>
/// Tuning of <see cref="XmppStore"/>. The defaults are what the daemon and the CLI use; tests
/// lower <see cref="Iterations"/> and the timings to stay fast.
/// </summary>
internal sealed class XmppStoreOptions
{
    /// <summary>PBKDF2 iterations for new credentials. Default 4096, the minimum of RFC 7677 section 4.</summary>
    public int Iterations { get; init; } = ScramCredential.DefaultIterations;

    /// <summary>
    /// Writes that may wait for the writer thread. Default 10 000: at about 1 KiB per offline
    /// message that is 10 MiB at most; a producer that finds the queue full awaits (backpressure).
    /// </summary>
    public int WriteQueueCapacity { get; init; } = 10_000;

    /// <summary>
    /// Most queued writes committed in one transaction (group commit: one fsync for all).
    /// Default 512, which keeps one transaction well under a second even for user imports.
    /// </summary>
    public int MaxWriteBatch { get; init; } = 512;

    /// <summary>Read-only connections for concurrent reads. Default: one per core, between 2 and 8.</summary>
    public int ReadConnections { get; init; } = Math.Clamp(Environment.ProcessorCount, 2, 8);

    /// <summary>
    /// How long a statement waits for a lock held by another process (the CLI or the daemon)
    /// before failing. Default 5 s: the CLI holds the write lock for one batch of an import,
    /// tens of milliseconds.
    /// </summary>
    public TimeSpan BusyTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the store looks for users removed or changed by another process. Default 1 s.</summary>
    public TimeSpan ChangePollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Offline messages kept per user. Default 1000, about a week of a busy conversation,
    /// and a bound on what one spammer can make us write.
    /// </summary>
    public int MaxOfflineMessagesPerUser { get; init; } = 1000;

    /// <summary>
    /// Users derived in parallel and then inserted in one transaction during an import. Default 2000.
    /// </summary>
    public int ImportBatchSize { get; init; } = 2000;

    internal void Validate()
    {
        Require(Iterations >= 1, nameof(Iterations), "must be at least 1");
        Require(WriteQueueCapacity >= 1, nameof(WriteQueueCapacity), "must be at least 1");
        Require(MaxWriteBatch >= 1, nameof(MaxWriteBatch), "must be at least 1");
        Require(ReadConnections >= 1, nameof(ReadConnections), "must be at least 1");
        Require(BusyTimeout > TimeSpan.Zero, nameof(BusyTimeout), "must be positive");
        Require(ChangePollInterval > TimeSpan.Zero, nameof(ChangePollInterval), "must be positive");
        Require(MaxOfflineMessagesPerUser >= 1, nameof(MaxOfflineMessagesPerUser), "must be at least 1");
        Require(ImportBatchSize >= 1, nameof(ImportBatchSize), "must be at least 1");
    }

    private static void Require(bool valid, string name, string rule)
    {
        if (!valid)
        {
            throw new ArgumentOutOfRangeException(name, $"XmppStoreOptions.{name} {rule}.");
        }
    }
}
