// The one include of the runtime tests.  The harness is split by concern:
//   env.h       where memtop and the test programs are; can this host run the tests
//   process.h   children on pipes, bounded waits on their lines and exits
//   protocol.h  memtop's run protocols (-- CMD, -p PID) and reading its reports live
//   reports.h   queries on memtop's NDJSON reports
#pragma once

#include "env.h"
#include "process.h"
#include "protocol.h"
#include "reports.h"
