#include "launcher/stop.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* The one piece of process-wide state: a signal handler has nowhere else to write. */
static volatile sig_atomic_t stop_signal;

static void record_stop(int signo)
{
    if (!stop_signal)
        stop_signal = signo;
}

void mu_stop_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = record_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

int mu_stop_signal(void)
{
    return stop_signal;
}

const char *mu_stop_signal_name(int signo)
{
    static char other[32];
    if (signo == SIGTERM)
        return "SIGTERM";
    if (signo == SIGINT)
        return "SIGINT";
    snprintf(other, sizeof other, "signal %d", signo);
    return other;
}
