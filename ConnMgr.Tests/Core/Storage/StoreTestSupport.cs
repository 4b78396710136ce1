using ConnMgr.Core.Storage;
using ConnMgr.Protocol.Sasl;
using Microsoft.Data.Sqlite;
using NUnit.Framework;

namespace ConnMgr.Tests.Core.Storage;

/// <summary>A unique temporary data directory per test, and store options that keep tests fast.</summary>
internal static class StoreTestSupport
{
    /// <summary>64 PBKDF2 iterations instead of 4096, and a 50 ms change poll instead of 1 s.</summary>
    public static XmppStoreOptions Fast(int? queueCapacity = null, int? maxWriteBatch = null, TimeSpan? busyTimeout = null, int? maxOffline = null, int? importBatch = null)
    {
        var defaults = new XmppStoreOptions();
        return new XmppStoreOptions
        {
            Iterations = 64,
            ChangePollInterval = TimeSpan.FromMilliseconds(50),
            WriteQueueCapacity = queueCapacity ?? defaults.WriteQueueCapacity,
            MaxWriteBatch = maxWriteBatch ?? defaults.MaxWriteBatch,
            BusyTimeout = busyTimeout ?? defaults.BusyTimeout,
            MaxOfflineMessagesPerUser = maxOffline ?? defaults.MaxOfflineMessagesPerUser,
            ImportBatchSize = importBatch ?? defaults.ImportBatchSize,
        };
    }

    public static string CreateTempDirectory()
    {
        var path = Path.Combine(Path.GetTempPath(), "connmgr-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }

    public static void DeleteDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
    }

    /// <summary>A plain connection to the store's file, for looking under the hood.</summary>
    public static SqliteConnection OpenRaw(string dataDirectory)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(dataDirectory, XmppStore.DatabaseFileName),
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString());
        connection.Open();
        return connection;
    }

    public static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    /// <summary>True if <paramref name="password"/> yields the stored keys, as a SCRAM server would check.</summary>
    public static bool Verifies(ScramCredential stored, string password)
    {
        var derived = ScramCredential.Derive(password, stored.Hash, stored.Salt, stored.Iterations);
        return derived.StoredKey.AsSpan().SequenceEqual(stored.StoredKey) && derived.ServerKey.AsSpan().SequenceEqual(stored.ServerKey);
    }

    /// <summary>Polls <paramref name="condition"/> until true; fails the test after 10 s.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting until {what}.");
            }
            await Task.Delay(10);
        }
    }
}
