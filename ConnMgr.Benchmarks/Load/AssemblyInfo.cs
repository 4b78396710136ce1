using System.Runtime.CompilerServices;

// The load generator's pure parts (histogram, schedule, options, PNG) are tested in ConnMgr.Tests/Load.
[assembly: InternalsVisibleTo("ConnMgr.Tests")]
