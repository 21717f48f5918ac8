/* The children of `muond launch`: start, watch, stop, tear down (see supervise.h). */
#define _GNU_SOURCE /* sigtimedwait's siginfo, prctl */
#include "launcher/supervise.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"

static sigset_t stop_signals, saved_mask;

void mu_supervise_block_signals(void)
{
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGCHLD);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop_signals, &saved_mask);
    /* Orphans of our children (ranks whose mpiexec died) come back to us, to be torn down. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
}

int mu_exit_code(int wait_status)
{
    if (WIFEXITED(wait_status))
        return WEXITSTATUS(wait_status);
    return WIFSIGNALED(wait_status) ? 128 + WTERMSIG(wait_status) : 1;
}

/* In the child, before exec: its own process group, our old signal mask, its environment,
 * its output, and no terminal input (it is not in the terminal's foreground group). */
static void become_child(const mu_child_t *child, const mu_child_env_t *env)
{
    setpgid(0, 0);
    sigprocmask(SIG_SETMASK, &saved_mask, NULL);
    for (int i = 0; i < env->count; i++)
        putenv(env->item[i]);
    const int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0)
        dup2(null_fd, STDIN_FILENO);
    if (child->log) {
        const int fd = open(child->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) {
            fprintf(stderr, "muond launch: cannot write %s: %s\n", child->log, strerror(errno));
            _exit(127);
        }
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
}

mu_status_t mu_child_start(mu_child_t *child, char *const argv[], const mu_child_env_t *env)
{
    fflush(NULL);
    const pid_t pid = fork();
    if (pid < 0)
        return mu_error(MU_ERR_IO, "muond launch: cannot start %s: %s", child->role,
                        strerror(errno));
    if (pid == 0) {
        become_child(child, env);
        execvp(argv[0], argv);
        fprintf(stderr, "muond launch: cannot run %s for %s: %s\n", argv[0], child->role,
                strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid); /* also here, so that no signal races the child's own call */
    child->pid = pid;
    child->exited = false;
    return MU_OK;
}

/* ---- process trees, from /proc ------------------------------------------------------------ */

static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    const size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *after_name = strrchr(buf, ')'); /* the command may hold spaces and parens */
    int ppid = -1;
    char state;
    if (!after_name || sscanf(after_name + 1, " %c %d", &state, &ppid) != 2)
        return -1;
    return (pid_t)ppid;
}

enum { TREE_MAX = 4096 };

/* pid and every live process below it (breadth first), at most cap. */
static int process_tree(pid_t root, pid_t *out, int cap)
{
    int count = 0;
    out[count++] = root;
    for (int next = 0; next < count; next++) {
        DIR *proc = opendir("/proc");
        if (!proc)
            break;
        for (struct dirent *e; (e = readdir(proc)) != NULL && count < cap;) {
            const pid_t pid = (pid_t)atoi(e->d_name);
            if (pid > 0 && parent_of(pid) == out[next])
                out[count++] = pid;
        }
        closedir(proc);
    }
    return count;
}

/* SIGKILL to a child and everything below it: the tree is listed first, so that processes
 * reparented as their parents die are not missed. */
static void kill_tree(pid_t root)
{
    static pid_t tree[TREE_MAX];
    const int n = process_tree(root, tree, TREE_MAX);
    for (int i = 0; i < n; i++)
        kill(tree[i], SIGKILL);
}

/* ---- the job's policy ----------------------------------------------------------------------- */

typedef enum phase {
    RUNNING,  /* everyone at work */
    ENDING,   /* one side is done; the other has grace_s to end by itself */
    STOPPING, /* asked to stop (SIGTERM, or the launcher's signal); SIGKILL after kill_s */
    KILLING,  /* SIGKILL sent */
} phase_t;

typedef struct job {
    mu_child_t *c;
    int n;
    const mu_supervise_opts_t *o;
    phase_t phase;
    double deadline;
    int signal_got;   /* the first stop signal the launcher received */
    int failure_code; /* of the first trainer that failed */
} job_t;

static int alive(const job_t *j, bool daemon)
{
    int count = 0;
    for (int i = 0; i < j->n; i++)
        count += !j->c[i].exited && j->c[i].is_daemon == daemon;
    return count;
}

/* SIGTERM to the daemon (mpiexec and srun forward it to the ranks: a clean stop after the last
 * complete step); `trainer_signal` to every trainer's process group. */
static void ask_to_stop(job_t *j, int trainer_signal)
{
    for (int i = 0; i < j->n; i++) {
        const mu_child_t *c = &j->c[i];
        if (c->exited)
            continue;
        if (c->is_daemon)
            kill(c->pid, SIGTERM);
        else
            kill(-c->pid, trainer_signal);
    }
    j->phase = STOPPING;
    j->deadline = mu_seconds() + j->o->kill_s;
}

static void kill_everyone(job_t *j)
{
    for (int i = 0; i < j->n; i++)
        if (!j->c[i].exited) {
            fprintf(stderr, "muond launch: %s (pid %d) did not stop; killing it\n", j->c[i].role,
                    (int)j->c[i].pid);
            kill_tree(j->c[i].pid);
        }
    j->phase = KILLING;
    j->deadline = mu_seconds() + j->o->kill_s;
}

static void report_exit(const job_t *j, const mu_child_t *c)
{
    const int code = mu_exit_code(c->wait_status);
    if (code == 0 || j->phase >= STOPPING)
        return;
    fprintf(stderr, "muond launch: %s (pid %d) exited with status %d%s%s\n", c->role, (int)c->pid,
            code, c->log ? "; its log: " : "", c->log ? c->log : "");
}

/* A child ended: record it and apply the policy. */
static void child_ended(job_t *j, mu_child_t *c, int wait_status)
{
    c->exited = true;
    c->wait_status = wait_status;
    report_exit(j, c);
    const bool failed = mu_exit_code(wait_status) != 0;
    if (!c->is_daemon && failed && j->failure_code == 0 && j->phase < STOPPING) {
        j->failure_code = mu_exit_code(wait_status);
        fprintf(stderr, "muond launch: stopping the job (%s failed)\n", c->role);
        ask_to_stop(j, SIGTERM);
    } else if (j->phase == RUNNING && (alive(j, false) == 0 || alive(j, true) == 0)) {
        j->phase = ENDING; /* the daemon ends when every trainer said BYE, and vice versa */
        j->deadline = mu_seconds() + j->o->grace_s;
    }
}

static void reap(job_t *j)
{
    int status;
    for (pid_t pid; (pid = waitpid(-1, &status, WNOHANG)) > 0;)
        for (int i = 0; i < j->n; i++)
            if (j->c[i].pid == pid && !j->c[i].exited)
                child_ended(j, &j->c[i], status); /* other pids: reparented orphans, reaped */
}

static void on_deadline(job_t *j)
{
    if (j->phase == ENDING) {
        const bool daemon = alive(j, true) > 0;
        fprintf(stderr, "muond launch: %s still running %g s after the %s ended; stopping %s\n",
                daemon ? "muond is" : "trainers are", j->o->grace_s, daemon ? "trainers" : "daemon",
                daemon ? "it" : "them");
        ask_to_stop(j, SIGTERM);
    } else if (j->phase == STOPPING) {
        kill_everyone(j);
    } else if (j->phase == KILLING) {
        j->deadline = mu_seconds() + j->o->kill_s; /* SIGKILL cannot be ignored: keep reaping */
    }
}

static void on_signal(job_t *j, int signo)
{
    if (j->signal_got) { /* a second one: no more waiting */
        kill_everyone(j);
        return;
    }
    j->signal_got = signo;
    fprintf(stderr, "muond launch: %s: stopping the daemon and the trainers\n", strsignal(signo));
    ask_to_stop(j, signo);
}

/* Waits for one event (a child's end, a signal) or the deadline, at most 200 ms. */
static void wait_event(job_t *j)
{
    double left = j->deadline >= 0 ? j->deadline - mu_seconds() : 0.2;
    if (left > 0.2)
        left = 0.2;
    if (left <= 0) {
        on_deadline(j);
        return;
    }
    const struct timespec t = {(time_t)left, (long)((left - (time_t)left) * 1e9)};
    siginfo_t info;
    const int signo = sigtimedwait(&stop_signals, &info, &t);
    if (signo == SIGINT || signo == SIGTERM || signo == SIGHUP)
        on_signal(j, signo);
    reap(j);
    if (j->deadline >= 0 && mu_seconds() >= j->deadline)
        on_deadline(j);
}

/* Orphans that came back to us (descendants of children that died first). */
static void tear_down_orphans(void)
{
    static pid_t tree[TREE_MAX];
    const int n = process_tree(getpid(), tree, TREE_MAX);
    for (int i = 1; i < n; i++)
        kill(tree[i], SIGKILL);
    for (int i = 1; i < n; i++)
        waitpid(tree[i], NULL, 0);
}

int mu_supervise(mu_child_t *children, int count, const mu_supervise_opts_t *o)
{
    job_t j = {children, count, o, RUNNING, -1.0, 0, 0};
    reap(&j);
    while (alive(&j, true) + alive(&j, false) > 0)
        wait_event(&j);
    tear_down_orphans();
    if (j.signal_got)
        return 128 + j.signal_got;
    if (j.failure_code)
        return j.failure_code;
    for (int i = 0; i < count; i++)
        if (mu_exit_code(children[i].wait_status) != 0)
            return mu_exit_code(children[i].wait_status);
    return 0;
}
