/* preload.h: the parts of libaether-preload.so that only it has. */
#ifndef AETHER_PRELOAD_H
#define AETHER_PRELOAD_H

/* Under `aether run` (AETHER_RUN_REPORT_DIR set): write <dir>/aether-report-<pid>.json with the process's
 * errors, statistics and leaks. Called at exit. */
void _ae_preload_write_report(void);

#endif
