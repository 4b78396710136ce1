using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace ConnMgr.Core.Storage;

/// <summary>
/// The only code that writes through this process's read-write connection. One dedicated thread
/// takes requests from a bounded queue, runs as many as are waiting (up to
/// <see cref="XmppStoreOptions.MaxWriteBatch"/>) in one transaction, each inside its own
/// savepoint, commits once, and only then completes the requests' tasks. Many offline messages
/// arriving together therefore cost one fsync, and a failing request rolls back alone.
/// A dedicated thread rather than a thread-pool task because SQLite calls block (fsync takes
/// milliseconds) and the pool's threads belong to the network loops.
/// </summary>
internal sealed class StoreWriter
{
    private const string Savepoint = "request";

    private readonly SqliteConnection _connection;
    private readonly Channel<WriteRequest> _queue;
    private readonly int _maxBatch;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public StoreWriter(SqliteConnection connection, XmppStoreOptions options, ILogger logger)
    {
        _connection = connection;
        _maxBatch = options.MaxWriteBatch;
        _logger = logger;
        _queue = Channel.CreateBounded<WriteRequest>(new BoundedChannelOptions(options.WriteQueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
        _thread = new Thread(Run) { IsBackground = true, Name = "connmgr store writer" };
        _thread.Start();
    }

    /// <summary>Requests waiting in the queue (not counting the batch being written).</summary>
    public int QueuedWrites => _queue.Reader.Count;

    /// <summary>
    /// Queues <paramref name="work"/>, waiting for room if the queue is full, and completes after
    /// the transaction that ran it has committed. <paramref name="cancellationToken"/> stops the
    /// wait for room, and skips the work if it has not started yet; once the work has run, the
    /// task reports what was committed, so a cancelled task always means nothing was written.
    /// </summary>
    public async Task<T> ExecuteAsync<T>(Func<SqliteTransaction, T> work, CancellationToken cancellationToken)
    {
        var request = new WriteRequest<T>(work, cancellationToken);
        try
        {
            await _queue.Writer.WriteAsync(request, cancellationToken);
        }
        catch (ChannelClosedException e) when (e.InnerException is null)
        {
            throw new ObjectDisposedException(nameof(XmppStore));
        }
        catch (ChannelClosedException e)
        {
            throw new InvalidOperationException("The store's writer thread has stopped.", e.InnerException);
        }
        return await request.Task;
    }

    /// <summary>Writes what is already queued, then closes the connection.</summary>
    public Task StopAsync()
    {
        _queue.Writer.TryComplete();
        return _stopped.Task;
    }

    private void Run()
    {
        var batch = new List<WriteRequest>(_maxBatch);
        try
        {
            while (WaitForRequests())
            {
                while (batch.Count < _maxBatch && _queue.Reader.TryRead(out var request))
                {
                    batch.Add(request);
                }
                CommitBatch(batch);
                batch.Clear();
            }
        }
        catch (Exception e)
        {
            // CommitBatch handles SQLite errors itself; reaching here is a bug. Fail loudly and
            // leave no caller waiting forever.
            StoreLog.WriterCrashed(_logger, e);
            _queue.Writer.TryComplete(e);
            foreach (var request in batch)
            {
                request.Fail(e);
            }
            while (_queue.Reader.TryRead(out var request))
            {
                request.Fail(e);
            }
        }
        finally
        {
            _connection.Dispose();
            _stopped.TrySetResult();
        }
    }

    private bool WaitForRequests()
    {
        var wait = _queue.Reader.WaitToReadAsync();
        return wait.IsCompletedSuccessfully ? wait.Result : wait.AsTask().GetAwaiter().GetResult();
    }

    private void CommitBatch(List<WriteRequest> batch)
    {
        try
        {
            // BEGIN IMMEDIATE (Microsoft.Data.Sqlite's default): takes the write lock now, waiting up to
            // the busy timeout if the other process holds it, instead of failing halfway through.
            using var transaction = _connection.BeginTransaction();
            foreach (var request in batch)
            {
                if (request.CancellationToken.IsCancellationRequested)
                {
                    request.MarkCanceled();
                    continue;
                }
                transaction.Save(Savepoint);
                try
                {
                    request.Execute(transaction);
                    transaction.Release(Savepoint);
                }
                catch (Exception e)
                {
                    StoreLog.RequestFailed(_logger, e);
                    request.MarkFailed(e);
                    // If SQLite already rolled back the whole transaction (disk full, I/O error),
                    // the savepoint is gone, this throws, and the whole batch fails below.
                    transaction.Rollback(Savepoint);
                    transaction.Release(Savepoint);
                }
            }
            transaction.Commit();
        }
        catch (Exception e)
        {
            StoreLog.BatchFailed(_logger, batch.Count, e);
            foreach (var request in batch)
            {
                request.Fail(e);
            }
            return;
        }

        foreach (var request in batch)
        {
            request.Publish();
        }
    }

    private abstract class WriteRequest(CancellationToken cancellationToken)
    {
        public CancellationToken CancellationToken { get; } = cancellationToken;

        /// <summary>Runs the work inside the batch's transaction and keeps its result for <see cref="Publish"/>.</summary>
        public abstract void Execute(SqliteTransaction transaction);

        public abstract void MarkCanceled();

        public abstract void MarkFailed(Exception error);

        /// <summary>After COMMIT: completes the caller's task with what <see cref="Execute"/> recorded.</summary>
        public abstract void Publish();

        /// <summary>The transaction did not commit: nothing of this request was written.</summary>
        public abstract void Fail(Exception error);
    }

    private sealed class WriteRequest<T>(Func<SqliteTransaction, T> work, CancellationToken cancellationToken) : WriteRequest(cancellationToken)
    {
        // Continuations run on the pool, never on the writer thread.
        private readonly TaskCompletionSource<T> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private T _result = default!;
        private Exception? _error;
        private bool _canceled;

        public Task<T> Task => _completion.Task;

        public override void Execute(SqliteTransaction transaction) => _result = work(transaction);

        public override void MarkCanceled() => _canceled = true;

        public override void MarkFailed(Exception error) => _error = error;

        public override void Publish()
        {
            if (_canceled)
            {
                _completion.TrySetCanceled(CancellationToken);
            }
            else if (_error is not null)
            {
                _completion.TrySetException(_error);
            }
            else
            {
                _completion.TrySetResult(_result);
            }
        }

        public override void Fail(Exception error)
        {
            if (_canceled)
            {
                _completion.TrySetCanceled(CancellationToken);
            }
            else
            {
                _completion.TrySetException(_error ?? error);
            }
        }
    }
}
