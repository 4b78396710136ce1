using System.Diagnostics;
using System.Text;
using ConnMgr.Core.Storage;
using ConnMgr.Protocol.Sasl;
using NUnit.Framework;
using static ConnMgr.Tests.Core.Storage.StoreTestSupport;

namespace ConnMgr.Tests.Core.Storage;

[TestFixture]
public class XmppStoreTests
{
    private string _directory = null!;

    [SetUp]
    public void CreateDirectory() => _directory = CreateTempDirectory();

    [TearDown]
    public void DeleteDirectory() => StoreTestSupport.DeleteDirectory(_directory);

    private XmppStore Open(XmppStoreOptions? options = null) => XmppStore.Open(_directory, options: options ?? Fast());

    private static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    // ---- Opening ----

    [Test]
    public async Task Open_creates_the_file_in_WAL_mode_at_the_current_schema_version()
    {
        await using (var store = Open())
        {
            Assert.That(store.DatabasePath, Is.EqualTo(Path.GetFullPath(Path.Combine(_directory, "connmgr.db"))));
        }
        using var raw = OpenRaw(_directory);
        Assert.Multiple(() =>
        {
            Assert.That(Scalar(raw, "PRAGMA user_version"), Is.EqualTo(StoreDatabase.SchemaVersion));
            Assert.That(StoreDatabase.SchemaVersion, Is.GreaterThanOrEqualTo(1));
            Assert.That(Scalar(raw, "PRAGMA journal_mode"), Is.EqualTo("wal"));
        });
        if (!OperatingSystem.IsWindows())
        {
            Assert.That(File.GetUnixFileMode(Path.Combine(_directory, "connmgr.db")), Is.EqualTo(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        }
    }

    [Test]
    public async Task Reopening_keeps_data_and_does_not_migrate_again()
    {
        await using (var store = Open())
        {
            Assert.That(await store.AddUserAsync("alice", "secret"), Is.True);
        }
        await using (var store = Open())
        {
            Assert.That(await store.UserExistsAsync("alice"), Is.True);
        }
    }

    [Test]
    public void Open_refuses_a_schema_newer_than_this_build()
    {
        Open().DisposeAsync().AsTask().GetAwaiter().GetResult();
        using (var raw = OpenRaw(_directory))
        {
            Scalar(raw, "PRAGMA user_version = 99");
        }
        var error = Assert.Throws<InvalidOperationException>(() => Open());
        Assert.That(error!.Message, Does.Contain("schema version 99"));
    }

    [Test]
    public async Task Two_processes_opening_a_new_file_at_once_both_succeed()
    {
        var opens = await Task.WhenAll(Task.Run(() => Open()), Task.Run(() => Open()));
        foreach (var store in opens)
        {
            await store.DisposeAsync();
        }
        using var raw = OpenRaw(_directory);
        Assert.That(Scalar(raw, "PRAGMA user_version"), Is.EqualTo(StoreDatabase.SchemaVersion));
    }

    [Test]
    public void Open_rejects_invalid_options_by_name()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => XmppStore.Open(_directory, options: new XmppStoreOptions { WriteQueueCapacity = 0 }));
        Assert.That(error!.Message, Does.Contain("WriteQueueCapacity"));
    }

    // ---- Users ----

    [Test]
    public async Task Added_user_has_both_SCRAM_credentials_and_the_password_is_nowhere_on_disk()
    {
        const string password = "correct-horse-battery-staple";
        await using (var store = Open())
        {
            Assert.That(await store.AddUserAsync("Alice", password), Is.True);
            var credentials = await store.GetCredentialsAsync("alice");
            Assert.That(credentials, Is.Not.Null);
            Assert.Multiple(() =>
            {
                Assert.That(credentials!.User, Is.EqualTo("alice"));
                Assert.That(credentials.Sha1.Hash, Is.EqualTo(ScramHash.Sha1));
                Assert.That(credentials.Sha256.Hash, Is.EqualTo(ScramHash.Sha256));
                Assert.That(credentials.Sha1.Iterations, Is.EqualTo(64));
                Assert.That(credentials.Sha1.StoredKey, Has.Length.EqualTo(20));
                Assert.That(credentials.Sha256.StoredKey, Has.Length.EqualTo(32));
                Assert.That(Verifies(credentials.Sha1, password), Is.True);
                Assert.That(Verifies(credentials.Sha256, password), Is.True);
                Assert.That(Verifies(credentials.Sha256, "wrong"), Is.False);
            });
            Assert.That(await store.GetCredentialsAsync("ALICE"), Is.Not.Null, "look-ups normalise the name too");
            Assert.That(await store.GetCredentialsAsync("bob"), Is.Null);
            Assert.That(await store.GetCredentialsAsync("not valid"), Is.Null);
        }
        foreach (var file in Directory.GetFiles(_directory))
        {
            var bytes = await File.ReadAllBytesAsync(file);
            Assert.That(bytes.AsSpan().IndexOf(Utf8(password)), Is.EqualTo(-1), file);
        }
    }

    [Test]
    public async Task Credentials_use_4096_iterations_by_default()
    {
        await using var store = XmppStore.Open(_directory);
        await store.AddUserAsync("alice", "secret");
        var credentials = await store.GetCredentialsAsync("alice");
        Assert.Multiple(() =>
        {
            Assert.That(credentials!.Sha1.Iterations, Is.EqualTo(4096));
            Assert.That(credentials.Sha256.Iterations, Is.EqualTo(4096));
            Assert.That(Verifies(credentials.Sha256, "secret"), Is.True);
        });
    }

    [Test]
    public async Task Adding_an_existing_user_returns_false_and_keeps_the_old_password()
    {
        await using var store = Open();
        Assert.That(await store.AddUserAsync("alice", "first"), Is.True);
        Assert.That(await store.AddUserAsync("ALICE", "second"), Is.False);
        Assert.That(Verifies((await store.GetCredentialsAsync("alice"))!.Sha256, "first"), Is.True);
    }

    [Test]
    public async Task Adding_an_invalid_name_or_password_throws_with_the_reason()
    {
        await using var store = Open();
        var name = Assert.ThrowsAsync<ArgumentException>(() => store.AddUserAsync("al ice", "secret"));
        Assert.That(name!.Message, Does.Contain("contains whitespace"));
        var password = Assert.ThrowsAsync<ArgumentException>(() => store.AddUserAsync("alice", ""));
        Assert.That(password!.Message, Does.Contain("is empty"));
        Assert.That(await store.ListUsersAsync(), Is.Empty);
    }

    [Test]
    public async Task SetPassword_replaces_both_credentials()
    {
        await using var store = Open();
        await store.AddUserAsync("alice", "old");
        Assert.That(await store.SetPasswordAsync("alice", "new"), Is.True);
        var credentials = (await store.GetCredentialsAsync("alice"))!;
        Assert.Multiple(() =>
        {
            Assert.That(Verifies(credentials.Sha1, "new"), Is.True);
            Assert.That(Verifies(credentials.Sha256, "new"), Is.True);
            Assert.That(Verifies(credentials.Sha256, "old"), Is.False);
        });
        Assert.That(await store.SetPasswordAsync("nobody", "new"), Is.False);
    }

    [Test]
    public async Task RemoveUser_deletes_the_user_with_roster_and_offline_messages()
    {
        await using var store = Open();
        await store.AddUserAsync("alice", "secret");
        await store.AddUserAsync("bob", "secret");
        await store.SetRosterItemAsync("alice", new RosterItem("bob@localhost", null, Subscription.Both, false, false, []));
        await store.SetRosterItemAsync("bob", new RosterItem("alice@localhost", null, Subscription.Both, false, false, []));
        await store.StoreOfflineAsync("alice", Utf8("<message/>"), DateTimeOffset.UtcNow);

        Assert.That(await store.RemoveUserAsync("Alice"), Is.True);
        Assert.That(await store.RemoveUserAsync("alice"), Is.False);
        Assert.That(await store.UserExistsAsync("alice"), Is.False);
        Assert.That(await store.GetCredentialsAsync("alice"), Is.Null);

        using var raw = OpenRaw(_directory);
        Assert.Multiple(() =>
        {
            Assert.That(Scalar(raw, "SELECT count(*) FROM roster WHERE owner = 'alice'"), Is.EqualTo(0));
            Assert.That(Scalar(raw, "SELECT count(*) FROM offline WHERE owner = 'alice'"), Is.EqualTo(0));
            Assert.That(Scalar(raw, "SELECT count(*) FROM roster WHERE owner = 'bob'"), Is.EqualTo(1), "other users' rosters are the core's business");
        });
    }

    [Test]
    public async Task ListUsers_returns_every_name_sorted()
    {
        await using var store = Open();
        foreach (var name in new[] { "carol", "Alice", "bob" })
        {
            await store.AddUserAsync(name, "secret");
        }
        Assert.That(await store.ListUsersAsync(), Is.EqualTo(new[] { "alice", "bob", "carol" }));
    }

    [Test]
    public async Task Import_derives_and_inserts_in_batches_and_counts_what_it_skipped()
    {
        await using var store = Open(Fast(importBatch: 7));
        await store.AddUserAsync("user3", "already-here");

        async IAsyncEnumerable<(string, string)> Entries()
        {
            for (var i = 0; i < 40; i++)
            {
                yield return ($"User{i}", $"password:{i}");
                await Task.Yield();
            }
            yield return ("user5", "duplicate in the input");
            yield return ("bad name", "x");
            yield return ("good", "");
        }

        var result = await store.ImportUsersAsync(Entries());

        Assert.That(result, Is.EqualTo(new ImportResult(Added: 39, SkippedExisting: 2, Invalid: 2)));
        Assert.That(await store.ListUsersAsync(), Has.Count.EqualTo(40));
        Assert.Multiple(async () =>
        {
            Assert.That(Verifies((await store.GetCredentialsAsync("user17"))!.Sha1, "password:17"), Is.True);
            Assert.That(Verifies((await store.GetCredentialsAsync("user5"))!.Sha256, "password:5"), Is.True);
            Assert.That(Verifies((await store.GetCredentialsAsync("user3"))!.Sha256, "already-here"), Is.True);
        });
    }

    // ---- Rosters ----

    [Test]
    public async Task Roster_items_round_trip_update_and_remove()
    {
        await using var store = Open();
        await store.AddUserAsync("alice", "secret");
        var bob = new RosterItem("bob@localhost", "Bob \"the builder\" <b>", Subscription.To, AskSubscribe: false, PendingIn: true, ["Friends", "Work, \"ops\"", "Ünïcødé"]);
        var carol = new RosterItem("carol@example.org", null, Subscription.None, AskSubscribe: true, PendingIn: false, []);

        Assert.That(await store.SetRosterItemAsync("alice", carol), Is.True);
        Assert.That(await store.SetRosterItemAsync("alice", bob), Is.True);

        var roster = await store.GetRosterAsync("alice");
        Assert.That(roster, Has.Count.EqualTo(2));
        AssertSameItem(roster[0], bob);
        AssertSameItem(roster[1], carol);

        var updated = bob with { Name = null, Subscription = Subscription.Both, PendingIn = false, Groups = ["Family"] };
        Assert.That(await store.SetRosterItemAsync("alice", updated), Is.True);
        AssertSameItem((await store.GetRosterItemAsync("alice", "bob@localhost"))!, updated);

        Assert.That(await store.RemoveRosterItemAsync("alice", "bob@localhost"), Is.True);
        Assert.That(await store.RemoveRosterItemAsync("alice", "bob@localhost"), Is.False);
        Assert.That(await store.GetRosterItemAsync("alice", "bob@localhost"), Is.Null);
        Assert.That((await store.GetRosterAsync("alice")).Select(i => i.Jid), Is.EqualTo(new[] { "carol@example.org" }));
    }

    [Test]
    public async Task Roster_of_an_unknown_owner_is_empty_and_cannot_be_written()
    {
        await using var store = Open();
        var item = new RosterItem("bob@localhost", null, Subscription.None, false, false, []);
        Assert.That(await store.SetRosterItemAsync("ghost", item), Is.False);
        Assert.That(await store.GetRosterAsync("ghost"), Is.Empty);
        Assert.That(await store.RemoveRosterItemAsync("ghost", "bob@localhost"), Is.False);
    }

    private static void AssertSameItem(RosterItem actual, RosterItem expected) => Assert.Multiple(() =>
    {
        Assert.That(actual.Jid, Is.EqualTo(expected.Jid));
        Assert.That(actual.Name, Is.EqualTo(expected.Name));
        Assert.That(actual.Subscription, Is.EqualTo(expected.Subscription));
        Assert.That(actual.AskSubscribe, Is.EqualTo(expected.AskSubscribe));
        Assert.That(actual.PendingIn, Is.EqualTo(expected.PendingIn));
        Assert.That(actual.Groups, Is.EqualTo(expected.Groups));
    });

    // ---- Offline messages ----

    [Test]
    public async Task Offline_message_survives_a_restart_and_is_taken_once()
    {
        var stamp = new DateTimeOffset(2026, 1, 2, 3, 4, 5, 678, TimeSpan.Zero);
        var stanza = Utf8("<message to='alice@localhost' type='chat'><body>héllo</body></message>");
        await using (var store = Open())
        {
            await store.AddUserAsync("alice", "secret");
            Assert.That(await store.StoreOfflineAsync("alice", stanza, stamp), Is.EqualTo(OfflineStoreResult.Stored));
        }

        await using (var store = Open())
        {
            var messages = await store.TakeOfflineAsync("alice");
            Assert.That(messages, Has.Count.EqualTo(1));
            Assert.That(messages[0].Stamp, Is.EqualTo(stamp));
            Assert.That(messages[0].Stanza.ToArray(), Is.EqualTo(stanza));
            Assert.That(await store.TakeOfflineAsync("alice"), Is.Empty);
        }
    }

    [Test]
    public async Task TakeOffline_returns_the_oldest_first_and_deletes_only_what_it_returned()
    {
        await using var store = Open();
        await store.AddUserAsync("alice", "secret");
        await store.AddUserAsync("bob", "secret");
        var now = DateTimeOffset.UtcNow;
        for (var i = 0; i < 5; i++)
        {
            await store.StoreOfflineAsync("alice", Utf8($"<message id='{i}'/>"), now);
        }
        await store.StoreOfflineAsync("bob", Utf8("<message id='b'/>"), now);

        var first = await store.TakeOfflineAsync("alice", max: 3);
        var rest = await store.TakeOfflineAsync("alice", max: 3);

        Assert.That(first.Select(m => Encoding.UTF8.GetString(m.Stanza.Span)), Is.EqualTo(new[] { "<message id='0'/>", "<message id='1'/>", "<message id='2'/>" }));
        Assert.That(rest.Select(m => Encoding.UTF8.GetString(m.Stanza.Span)), Is.EqualTo(new[] { "<message id='3'/>", "<message id='4'/>" }));
        Assert.That(await store.TakeOfflineAsync("alice"), Is.Empty);
        Assert.That(await store.TakeOfflineAsync("bob"), Has.Count.EqualTo(1));
    }

    [Test]
    public async Task StoreOffline_copies_the_caller_buffer()
    {
        await using var store = Open();
        await store.AddUserAsync("alice", "secret");
        var buffer = Utf8("<message id='1'/>");
        var storing = store.StoreOfflineAsync("alice", buffer, DateTimeOffset.UtcNow);
        buffer.AsSpan().Fill((byte)'x');
        await storing;
        Assert.That(Encoding.UTF8.GetString((await store.TakeOfflineAsync("alice"))[0].Stanza.Span), Is.EqualTo("<message id='1'/>"));
    }

    [Test]
    public async Task StoreOffline_refuses_unknown_users_and_full_queues()
    {
        await using var store = Open(Fast(maxOffline: 2));
        await store.AddUserAsync("alice", "secret");
        var now = DateTimeOffset.UtcNow;
        Assert.Multiple(async () =>
        {
            Assert.That(await store.StoreOfflineAsync("ghost", Utf8("<message/>"), now), Is.EqualTo(OfflineStoreResult.UnknownUser));
            Assert.That(await store.StoreOfflineAsync("not valid", Utf8("<message/>"), now), Is.EqualTo(OfflineStoreResult.UnknownUser));
            Assert.That(await store.StoreOfflineAsync("alice", Utf8("<message/>"), now), Is.EqualTo(OfflineStoreResult.Stored));
            Assert.That(await store.StoreOfflineAsync("alice", Utf8("<message/>"), now), Is.EqualTo(OfflineStoreResult.Stored));
            Assert.That(await store.StoreOfflineAsync("alice", Utf8("<message/>"), now), Is.EqualTo(OfflineStoreResult.QuotaExceeded));
        });
        await store.TakeOfflineAsync("alice", max: 1);
        Assert.That(await store.StoreOfflineAsync("alice", Utf8("<message/>"), now), Is.EqualTo(OfflineStoreResult.Stored));
    }

    [Test]
    public async Task Many_concurrent_offline_writes_all_commit()
    {
        await using var store = Open();
        await store.AddUserAsync("alice", "secret");
        var writes = Enumerable.Range(0, 300).Select(i => store.StoreOfflineAsync("alice", Utf8($"<message id='{i}'/>"), DateTimeOffset.UtcNow));
        var results = await Task.WhenAll(writes);
        Assert.That(results, Is.All.EqualTo(OfflineStoreResult.Stored));
        Assert.That(await store.TakeOfflineAsync("alice", max: 1000), Has.Count.EqualTo(300));
    }

    // ---- Writer queue ----

    [Test]
    public async Task Writer_queue_is_bounded_and_producers_wait_for_room()
    {
        await using var store = Open(Fast(queueCapacity: 4, maxWriteBatch: 1, busyTimeout: TimeSpan.FromSeconds(30)));
        await store.AddUserAsync("alice", "secret");

        List<Task<OfflineStoreResult>> writes;
        using (var other = OpenRaw(_directory))
        {
            // Another process holds the write lock: our writer takes one request and waits for it.
            using var lockHolder = other.BeginTransaction();
            writes = Enumerable.Range(0, 20).Select(i => store.StoreOfflineAsync("alice", Utf8($"<message id='{i}'/>"), DateTimeOffset.UtcNow)).ToList();

            await WaitUntilAsync(() => store.QueuedWrites == 4, "the queue is full");
            await Task.Delay(200);
            Assert.Multiple(() =>
            {
                Assert.That(store.QueuedWrites, Is.EqualTo(4), "never more than the capacity waits in the queue");
                Assert.That(writes.Count(w => w.IsCompleted), Is.Zero, "nothing completes before it is committed");
            });
            lockHolder.Rollback();
        }

        Assert.That(await Task.WhenAll(writes), Is.All.EqualTo(OfflineStoreResult.Stored));
        Assert.That(await store.TakeOfflineAsync("alice", max: 100), Has.Count.EqualTo(20));
    }

    [Test]
    public async Task A_cancelled_write_writes_nothing()
    {
        await using var store = Open();
        await store.AddUserAsync("alice", "secret");
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.That(async () => await store.StoreOfflineAsync("alice", Utf8("<message/>"), DateTimeOffset.UtcNow, cancelled.Token), Throws.InstanceOf<OperationCanceledException>());
        Assert.That(await store.TakeOfflineAsync("alice"), Is.Empty);
    }

    [Test]
    public async Task Dispose_commits_queued_writes_and_later_calls_fail()
    {
        var store = Open();
        await store.AddUserAsync("alice", "secret");
        var pending = Enumerable.Range(0, 50).Select(i => store.StoreOfflineAsync("alice", Utf8($"<m{i}/>"), DateTimeOffset.UtcNow)).ToList();
        await store.DisposeAsync();
        await store.DisposeAsync();

        Assert.That(await Task.WhenAll(pending), Is.All.EqualTo(OfflineStoreResult.Stored));
        Assert.That(async () => await store.RemoveUserAsync("alice"), Throws.InstanceOf<ObjectDisposedException>());
        Assert.That(async () => await store.ListUsersAsync(), Throws.InstanceOf<ObjectDisposedException>());
    }

    // ---- Sharing the file with the CLI ----

    [Test]
    public async Task A_second_instance_on_the_same_file_is_seen_at_once_and_removals_are_reported()
    {
        await using var daemon = Open();
        var removed = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var passwordChanged = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        daemon.UserRemoved += name => removed.TrySetResult(name);
        daemon.PasswordChanged += name => passwordChanged.TrySetResult(name);

        await using (var cli = Open())
        {
            Assert.That(await cli.AddUserAsync("carol", "first"), Is.True);
        }
        Assert.That(await daemon.UserExistsAsync("carol"), Is.True);
        Assert.That(Verifies((await daemon.GetCredentialsAsync("carol"))!.Sha256, "first"), Is.True);

        await using (var cli = Open())
        {
            Assert.That(await cli.SetPasswordAsync("carol", "second"), Is.True);
        }
        Assert.That(Verifies((await daemon.GetCredentialsAsync("carol"))!.Sha256, "second"), Is.True, "no cached credentials");
        Assert.That(await passwordChanged.Task.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo("carol"));

        await using (var cli = Open())
        {
            Assert.That(await cli.RemoveUserAsync("carol"), Is.True);
        }
        Assert.That(await removed.Task.WaitAsync(TimeSpan.FromSeconds(10)), Is.EqualTo("carol"));
        Assert.That(await daemon.GetCredentialsAsync("carol"), Is.Null);
    }

    [Test]
    public async Task Removals_by_this_process_are_reported_too_and_a_throwing_handler_does_not_stop_the_watcher()
    {
        await using var store = Open();
        var removed = new List<string>();
        var both = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        store.UserRemoved += _ => throw new InvalidOperationException("handler bug");
        store.UserRemoved += name =>
        {
            lock (removed)
            {
                removed.Add(name);
                if (removed.Count == 2)
                {
                    both.TrySetResult();
                }
            }
        };
        await store.AddUserAsync("alice", "secret");
        await store.AddUserAsync("bob", "secret");

        await store.RemoveUserAsync("alice");
        await Task.Delay(150);
        await store.RemoveUserAsync("bob");

        await both.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.That(removed, Is.EqualTo(new[] { "alice", "bob" }));
    }

    // ---- Measurement, run by hand: dotnet test --filter Name~Import_10000 ----

    [Test, Explicit("Measures the import of 10,000 users at the default 4096 iterations; prints the time.")]
    public async Task Import_10000_users_at_default_iterations()
    {
        await using var store = XmppStore.Open(_directory);
        async IAsyncEnumerable<(string, string)> Entries()
        {
            for (var i = 0; i < 10_000; i++)
            {
                yield return ($"user{i}", $"password{i}");
            }
            await Task.CompletedTask;
        }

        var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var result = await store.ImportUsersAsync(Entries());
        clock.Stop();
        process.Refresh();

        // CPU time too: on a shared machine the wall time says more about the neighbours.
        await TestContext.Out.WriteLineAsync($"Imported {result.Added} users in {clock.Elapsed.TotalSeconds:F1} s wall, " +
            $"{(process.TotalProcessorTime - cpuBefore).TotalSeconds:F1} s CPU, on {Environment.ProcessorCount} cores");
        Assert.That(result.Added, Is.EqualTo(10_000));
    }
}
