using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;

namespace ConnMgr.Tests.Interop;

/// <summary>
/// A process the interop tests start (the daemon, a client script), with its
/// standard output and error kept line by line for assertions and for the test
/// log. Disposing kills the whole process tree; so does the test host exiting,
/// so that a failed or aborted run leaves nothing listening behind it.
/// </summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    // Children still running, killed if the test host exits before disposing them.
    private static readonly ConcurrentDictionary<ChildProcess, byte> s_live = new();

    // How long a killed process gets to be reaped before disposal gives up on it.
    private static readonly TimeSpan s_reapTimeout = TimeSpan.FromSeconds(10);

    private readonly Process _process;
    private readonly Lock _lock = new();
    private readonly List<string> _transcript = [];
    private readonly List<string> _stdout = [];
    private readonly List<(Func<string, bool> Predicate, TaskCompletionSource<string> Found)> _lineWaiters = [];
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    static ChildProcess()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            foreach (ChildProcess child in s_live.Keys)
            {
                child.KillTree();
            }
        };
    }

    private ChildProcess(Process process, string name)
    {
        _process = process;
        Name = name;
    }

    public string Name { get; }

    public bool HasExited => _process.HasExited;

    /// <summary>Lines written to standard output so far.</summary>
    public IReadOnlyList<string> StandardOutput
    {
        get
        {
            lock (_lock)
            {
                return _stdout.ToArray();
            }
        }
    }

    /// <summary>Number of transcript lines so far: a mark for <see cref="TranscriptSince"/>.</summary>
    public int TranscriptLength
    {
        get
        {
            lock (_lock)
            {
                return _transcript.Count;
            }
        }
    }

    /// <param name="name">For messages: <c>connmgr</c>, <c>chat.py</c>.</param>
    public static ChildProcess Start(string name, string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[key] = value;
        }
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new ChildProcess(process, name);
        process.OutputDataReceived += (_, e) => child.OnLine(e.Data, isStdout: true);
        process.ErrorDataReceived += (_, e) => child.OnLine(e.Data, isStdout: false);
        process.Start();
        s_live.TryAdd(child, 0);
        // Nothing reads standard input: closing it gives the child EOF instead of a hang.
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Waits for a standard output line matching <paramref name="predicate"/>, including lines already written.</summary>
    /// <exception cref="TimeoutException">No such line within <paramref name="timeout"/>.</exception>
    /// <exception cref="InvalidOperationException">Standard output closed (the process ended) first.</exception>
    public async Task<string> WaitForLineAsync(Func<string, bool> predicate, TimeSpan timeout)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            foreach (string line in _stdout)
            {
                if (predicate(line))
                {
                    return line;
                }
            }
            _lineWaiters.Add((predicate, found));
        }
        Task first = await Task.WhenAny(found.Task, _stdoutClosed.Task, Task.Delay(timeout));
        lock (_lock)
        {
            _lineWaiters.RemoveAll(w => w.Found == found);
        }
        if (found.Task.IsCompleted)
        {
            return await found.Task;
        }
        throw first == _stdoutClosed.Task
            ? new InvalidOperationException($"{Name} closed its output (exit status {ExitCodeOrNull()}) before the line expected")
            : new TimeoutException($"{Name} wrote no line expected within {timeout.TotalSeconds} s");
    }

    /// <summary>Waits for the process to end and returns its exit status; kills the tree if it outlives <paramref name="timeout"/>.</summary>
    /// <exception cref="TimeoutException">It did not end in time (it has been killed).</exception>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            // Also waits for standard output and error to be read to the end.
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            KillTree();
            throw new TimeoutException($"{Name} did not exit within {timeout.TotalSeconds} s and was killed");
        }
        s_live.TryRemove(this, out _);
        return _process.ExitCode;
    }

    /// <summary>Every line of standard output (<c>out|</c>) and error (<c>err|</c>) in arrival order.</summary>
    public string Transcript() => TranscriptSince(0);

    public string TranscriptSince(int mark)
    {
        lock (_lock)
        {
            var text = new StringBuilder();
            for (int i = Math.Min(mark, _transcript.Count); i < _transcript.Count; i++)
            {
                text.Append(_transcript[i]).Append('\n');
            }
            return text.ToString();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        KillTree();
        try
        {
            using var deadline = new CancellationTokenSource(s_reapTimeout);
            await _process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            // Reported by the caller's transcript if it matters; the kill was sent.
        }
        s_live.TryRemove(this, out _);
        _process.Dispose();
    }

    private void KillTree()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // It exited between the check and the kill.
        }
    }

    private int? ExitCodeOrNull() => _process.HasExited ? _process.ExitCode : null;

    private void OnLine(string? line, bool isStdout)
    {
        if (line is null)
        {
            if (isStdout)
            {
                _stdoutClosed.TrySetResult();
            }
            return;
        }
        List<TaskCompletionSource<string>>? matched = null;
        lock (_lock)
        {
            _transcript.Add((isStdout ? "out| " : "err| ") + line);
            if (!isStdout)
            {
                return;
            }
            _stdout.Add(line);
            for (int i = _lineWaiters.Count - 1; i >= 0; i--)
            {
                if (_lineWaiters[i].Predicate(line))
                {
                    (matched ??= []).Add(_lineWaiters[i].Found);
                    _lineWaiters.RemoveAt(i);
                }
            }
        }
        foreach (TaskCompletionSource<string> found in matched ?? [])
        {
            found.TrySetResult(line);
        }
    }
}
