/*
 * A graceful stop on SIGTERM or SIGINT, what Slurm sends at the end of a job (and scancel, and
 * Ctrl-C). The handler only records the signal; the daemon looks at step boundaries, where all
 * ranks agree to stop together, so a step is either applied on every rank or on none.
 */
#ifndef MU_LAUNCHER_STOP_H
#define MU_LAUNCHER_STOP_H

/* Installs the handlers (without SA_RESTART, so a blocking poll returns early). */
void mu_stop_install(void);

/* The stop signal this process received (SIGTERM or SIGINT), or 0. */
int mu_stop_signal(void);

/* "SIGTERM", "SIGINT", else "signal N" (in a static buffer). */
const char *mu_stop_signal_name(int signo);

/* The longest a blocking wait may sleep before it looks at mu_stop_signal again: a signal
 * that lands between the look and the wait must not leave the wait blocked for good. */
#define MU_STOP_POLL_MS 200

#endif
