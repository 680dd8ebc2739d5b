/*
 * sched-supervisor: the per-task supervisor of the Scheduler agent.
 *
 *   sched-supervisor [agent supervise] --run-dir DIR
 *   sched-supervisor --pool          (pre-started; reads DIR as one line on stdin)
 *
 * Reads DIR/spec (written by the agent, see Scheduler.Agent.Supervision.SupervisorSpec): records
 * "key=value", each terminated by a NUL byte. Starts the task in a new session, inside its
 * cgroups (the child writes its own pid to each cgroup.procs file between fork and exec), with
 * its working directory, environment, stdout/stderr files and user. Prints one line on stdout:
 * "started PID" or "failed MESSAGE", then moves its own stdio to DIR/supervisor.log and stays in
 * its own session, so it outlives the agent.
 *
 * A kill is a SIGTERM to the supervisor, optionally preceded by DIR/kill.request holding the
 * grace period in seconds: the task's process group and every process of its container get
 * SIGTERM; after the grace the whole container is killed (frozen first on cgroup v1,
 * cgroup.kill on v2).
 *
 * When the task's main process ends, whatever it left in its container is killed, the usage
 * (peak memory, OOM kills, cpu) is read, an OCI runtime's container state is deleted, the cgroups
 * are removed, and DIR/status.json is written atomically (temp file, rename) with the fields of
 * Scheduler.Agent.Supervision.SupervisorResult.
 */
#include "supervisor.h"

/* What the child reports on the error pipe when it cannot exec the task. */
enum stage { STAGE_JOIN = 1, STAGE_CHDIR, STAGE_STDIN, STAGE_STDOUT, STAGE_STDERR, STAGE_USER, STAGE_EXEC, STAGE_SIGNALS };

struct child_error {
    int stage;
    int err;
    int index;
};

static const char *run_dir;

/* ---------- spec ---------- */

static int parse_spec(const char *path, struct spec *s, char *msg)
{
    size_t len;
    char *buf = read_file(path, &len);
    if (!buf) {
        snprintf(msg, MSG_MAX, "cannot read the task spec %s: %s", path, strerror(errno));
        return -1;
    }
    memset(s, 0, sizeof *s);
    s->grace = 3;
    s->kind = "none";
    for (size_t pos = 0; pos < len;) {
        char *rec = buf + pos;
        size_t rlen = strnlen(rec, len - pos);
        if (pos + rlen >= len) {
            snprintf(msg, MSG_MAX, "malformed task spec %s: last record is not NUL-terminated", path);
            return -1;
        }
        pos += rlen + 1;
        char *eq = strchr(rec, '=');
        if (!eq) {
            snprintf(msg, MSG_MAX, "malformed task spec %s: record without '=': %.64s", path, rec);
            return -1;
        }
        *eq = '\0';
        char *v = eq + 1;
        if (!strcmp(rec, "arg"))
            list_add(&s->argv, v);
        else if (!strcmp(rec, "env"))
            list_add(&s->env, v);
        else if (!strcmp(rec, "join"))
            list_add(&s->join, v);
        else if (!strcmp(rec, "remove"))
            list_add(&s->remove, v);
        else if (!strcmp(rec, "cwd"))
            s->cwd = v;
        else if (!strcmp(rec, "stdout"))
            s->out = v;
        else if (!strcmp(rec, "stderr"))
            s->err = v;
        else if (!strcmp(rec, "user"))
            s->user = v;
        else if (!strcmp(rec, "cgroup"))
            s->kind = v;
        else if (!strcmp(rec, "freezer"))
            s->freezer = v;
        else if (!strcmp(rec, "memory"))
            s->memory = v;
        else if (!strcmp(rec, "cpuacct"))
            s->cpuacct = v;
        else if (!strcmp(rec, "unified"))
            s->unified = v;
        else if (!strcmp(rec, "grace"))
            s->grace = strtod(v, NULL);
        else if (!strcmp(rec, "runtime"))
            s->runtime = v;
        else if (!strcmp(rec, "runtime_root"))
            s->runtime_root = v;
        else if (!strcmp(rec, "container_id"))
            s->container_id = v;
        else {
            snprintf(msg, MSG_MAX, "task spec %s has an unknown key '%s' (agent and supervisor of different versions?)", path, rec);
            return -1;
        }
    }
    if (s->argv.count == 0 || s->argv.items[0][0] != '/') {
        snprintf(msg, MSG_MAX, "task spec %s: no command, or argv[0] is not an absolute path", path);
        return -1;
    }
    if (!s->cwd || !s->out || !s->err) {
        snprintf(msg, MSG_MAX, "task spec %s lacks cwd, stdout or stderr", path);
        return -1;
    }
    if (!s->env.items) {
        /* execve needs an array even when there is no variable: one holding only the NULL. */
        list_add(&s->env, NULL);
        s->env.count = 0;
    }
    return 0;
}

/* ---------- the child: join cgroups, set up, exec ---------- */

static void child_fail(int fd, int stage, int index)
{
    struct child_error e = { stage, errno, index };
    ssize_t w = write(fd, &e, sizeof e);
    (void)w;
    _exit(127);
}

static void open_onto(const char *path, int flags, int target, int errfd, int stage)
{
    int fd = open(path, flags | O_CLOEXEC, 0644);
    if (fd < 0)
        child_fail(errfd, stage, 0);
    if (dup2(fd, target) < 0)
        child_fail(errfd, stage, 0);
    close(fd);
}

static void run_child(const struct spec *s, int errfd)
{
    char pid[32];
    snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    for (size_t i = 0; i < s->join.count; i++) {
        if (write_text(s->join.items[i], pid) < 0)
            child_fail(errfd, STAGE_JOIN, (int)i);
    }
    if (setsid() < 0)
        child_fail(errfd, STAGE_SIGNALS, 0);
    if (chdir(s->cwd) < 0)
        child_fail(errfd, STAGE_CHDIR, 0);
    open_onto("/dev/null", O_RDONLY, 0, errfd, STAGE_STDIN);
    open_onto(s->out, O_WRONLY | O_CREAT | O_APPEND, 1, errfd, STAGE_STDOUT);
    open_onto(s->err, O_WRONLY | O_CREAT | O_APPEND, 2, errfd, STAGE_STDERR);
    if (s->user && *s->user && strcmp(s->user, "root") != 0 && geteuid() == 0) {
        errno = 0;
        struct passwd *pw = getpwnam(s->user);
        if (!pw) {
            if (errno == 0)
                errno = ENOENT;
            child_fail(errfd, STAGE_USER, 0);
        }
        if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
            child_fail(errfd, STAGE_USER, 1);
    }
    /* No signal blocked and SIGPIPE back to its default (the only disposition the supervisor
     * changed; handlers are reset by exec), as a fresh process expects. */
    sigset_t none;
    sigemptyset(&none);
    signal(SIGPIPE, SIG_DFL);
    if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
        child_fail(errfd, STAGE_SIGNALS, 0);
    execve(s->argv.items[0], s->argv.items, s->env.items);
    child_fail(errfd, STAGE_EXEC, 0);
}

static const char *errno_name(int e)
{
    switch (e) {
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOEXEC: return "ENOEXEC";
    case EPERM: return "EPERM";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ENOMEM: return "ENOMEM";
    case EAGAIN: return "EAGAIN";
    case ESRCH: return "ESRCH";
    case EINVAL: return "EINVAL";
    case ETXTBSY: return "ETXTBSY";
    default: return "errno";
    }
}

static void describe_child_error(const struct spec *s, const struct child_error *e, char *msg, const char **reason)
{
    const char *exe = s->argv.items[0];
    *reason = "launch_failed";
    switch (e->stage) {
    case STAGE_JOIN:
        *reason = "cgroup";
        snprintf(msg, MSG_MAX, "cannot join cgroup %s: %s (%s); the container's cgroups are missing or the agent is not root",
                 e->index >= 0 && (size_t)e->index < s->join.count ? s->join.items[e->index] : "?", strerror(e->err), errno_name(e->err));
        break;
    case STAGE_CHDIR:
        snprintf(msg, MSG_MAX, "cannot change to the working directory %s: %s (%s)", s->cwd, strerror(e->err), errno_name(e->err));
        break;
    case STAGE_STDIN:
        snprintf(msg, MSG_MAX, "cannot open /dev/null: %s", strerror(e->err));
        break;
    case STAGE_STDOUT:
    case STAGE_STDERR:
        snprintf(msg, MSG_MAX, "cannot open %s for the task's output: %s (%s)", e->stage == STAGE_STDOUT ? s->out : s->err, strerror(e->err), errno_name(e->err));
        break;
    case STAGE_USER:
        *reason = "user";
        if (e->index == 0)
            snprintf(msg, MSG_MAX, "unknown user '%s' on this agent; create it or run the task as another user", s->user);
        else
            snprintf(msg, MSG_MAX, "cannot switch to user '%s': %s", s->user, strerror(e->err));
        break;
    case STAGE_EXEC:
        if (e->err == ENOENT) {
            *reason = "executable_not_found";
            snprintf(msg, MSG_MAX, "cannot execute %s: no such file (ENOENT); check the command path", exe);
        } else if (e->err == EACCES) {
            *reason = "not_executable";
            snprintf(msg, MSG_MAX, "cannot execute %s: permission denied (EACCES); it is not executable (chmod +x) or a directory on its path is not searchable", exe);
        } else if (e->err == ENOEXEC) {
            *reason = "not_executable";
            snprintf(msg, MSG_MAX, "cannot execute %s: exec format error (ENOEXEC); it is not a binary for this machine and has no #! line", exe);
        } else {
            snprintf(msg, MSG_MAX, "cannot execute %s: %s (%s)", exe, strerror(e->err), errno_name(e->err));
        }
        break;
    default:
        snprintf(msg, MSG_MAX, "cannot set up the task's process: %s", strerror(e->err));
        break;
    }
}

/* ---------- status.json ---------- */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static int write_status(const struct result *r)
{
    char *final = path_in(run_dir, "status.json");
    char *tmp = path_in(run_dir, "status.json.tmp");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "supervisor: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    fputs("{\n  \"ExitCode\": ", f);
    if (r->has_exit)
        fprintf(f, "%d", r->exit_code);
    else
        fputs("null", f);
    fputs(",\n  \"Signal\": ", f);
    if (r->has_signal)
        fprintf(f, "%d", r->signal);
    else
        fputs("null", f);
    fprintf(f, ",\n  \"Killed\": %s,\n  \"OomKilled\": %s,\n  \"LaunchError\": ", r->killed ? "true" : "false", r->oom_killed ? "true" : "false");
    if (r->launch_error)
        json_string(f, r->launch_error);
    else
        fputs("null", f);
    fputs(",\n  \"LaunchReason\": ", f);
    if (r->launch_reason)
        json_string(f, r->launch_reason);
    else
        fputs("null", f);
    fprintf(f, ",\n  \"MemPeakBytes\": %llu,\n  \"MemLimitBytes\": %llu,\n  \"CpuUserSeconds\": %.6f,\n  \"CpuSystemSeconds\": %.6f,\n  \"FinishedAt\": %.3f\n}\n",
            r->mem_peak, r->mem_limit, r->cpu_user, r->cpu_system, now_seconds());
    /* Atomic (rename) but not fsynced: the file only has to survive the agent, not the host. After
     * a host crash the boot id differs and the agent reports the old tasks gone without reading
     * it, so an fsync (about 10 ms on a loaded disk, on every task's exit path) would buy nothing. */
    int ok = fflush(f) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, final) < 0) {
        fprintf(stderr, "supervisor: cannot write %s: %s\n", final, strerror(errno));
        return -1;
    }
    free(tmp);
    free(final);
    return 0;
}

/* ---------- main ---------- */

static void handshake(const char *fmt, ...)
{
    char line[MSG_MAX + 32];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    for (int i = 0; i < n; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    line[n++] = '\n';
    if (write_all(1, line, (size_t)n) < 0) {
        /* The agent is gone; the task still runs and its end is still recorded. */
    }
}

static void detach_stdio(void)
{
    char *log = path_in(run_dir, "supervisor.log");
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        close(null);
    }
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    free(log);
}

static double kill_grace(const struct spec *s)
{
    char *p = path_in(run_dir, "kill.request");
    char *text = read_file(p, NULL);
    free(p);
    double grace = s->grace;
    if (text) {
        char *end;
        double v = strtod(text, &end);
        if (end != text && v >= 0)
            grace = v;
        free(text);
    }
    return grace;
}

static void finish(const struct spec *s, pid_t pid, struct result *r)
{
    kill_container(s);
    if (pid > 0)
        kill(-pid, SIGKILL);
    read_usage(s, r);
    if (s->runtime && s->container_id) {
        /* The container's state directory (ROOT/ID, as runc and crun keep it) is left by "runc run
         * --keep" (so the usage above could still be read from its cgroups) or by a runtime that
         * was itself killed; a foreground run without --keep deletes its container on exit, and
         * then the delete (another runtime start, tens of ms) is skipped. */
        const char *root = s->runtime_root ? s->runtime_root : "/run/runc";
        char *state = path_in(root, s->container_id);
        if (exists(state)) {
            char *argv[] = { (char *)s->runtime, "--root", (char *)root, "delete", "--force", (char *)s->container_id, NULL };
            run_helper(argv, 10000);
        }
        free(state);
    }
    remove_cgroups(s);
}

/* Pool mode: started ahead of need, the supervisor waits for its run dir as one line on stdin;
 * end of input (the agent closed the pool or died) ends it quietly. */
static char *read_run_dir(void)
{
    static char line[4096];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(0, line + n, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return NULL;
        if (line[n] == '\n')
            break;
        if (++n == sizeof line - 1)
            return NULL;
    }
    line[n] = '\0';
    return n > 0 ? line : NULL;
}

int main(int argc, char **argv)
{
    int pool = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--run-dir") && i + 1 < argc)
            run_dir = argv[i + 1];
        else if (!strcmp(argv[i], "--pool"))
            pool = 1;
    }
    if (!run_dir && !pool) {
        fprintf(stderr, "usage: %s --run-dir DIR | --pool (run dir on stdin)\n", argv[0]);
        return 2;
    }
    setsid();
    /* The signals we act on are taken synchronously (sigtimedwait), never by handlers. */
    sigset_t waited;
    sigemptyset(&waited);
    sigaddset(&waited, SIGTERM);
    sigaddset(&waited, SIGCHLD);
    sigaddset(&waited, SIGINT);
    sigaddset(&waited, SIGHUP);
    sigprocmask(SIG_BLOCK, &waited, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (pool && !(run_dir = read_run_dir()))
        return 0;

    struct spec spec;
    struct result result;
    memset(&result, 0, sizeof result);
    static char msg[MSG_MAX];
    char *spec_path = path_in(run_dir, "spec");
    if (parse_spec(spec_path, &spec, msg) < 0) {
        result.launch_error = msg;
        result.launch_reason = "spec";
        write_status(&result);
        handshake("failed %s", msg);
        return 2;
    }

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        snprintf(msg, MSG_MAX, "cannot create a pipe: %s", strerror(errno));
        result.launch_error = msg;
        finish(&spec, 0, &result);
        write_status(&result);
        handshake("failed %s", msg);
        return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, MSG_MAX, "cannot fork the task: %s", strerror(errno));
        result.launch_error = msg;
        finish(&spec, 0, &result);
        write_status(&result);
        handshake("failed %s", msg);
        return 1;
    }
    if (pid == 0) {
        close(pipefd[0]);
        run_child(&spec, pipefd[1]);
    }
    close(pipefd[1]);
    struct child_error ce;
    ssize_t got;
    do {
        got = read(pipefd[0], &ce, sizeof ce);
    } while (got < 0 && errno == EINTR);
    close(pipefd[0]);
    if (got == (ssize_t)sizeof ce) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        describe_child_error(&spec, &ce, msg, &result.launch_reason);
        result.launch_error = msg;
        finish(&spec, 0, &result);
        write_status(&result);
        handshake("failed %s", msg);
        return 1;
    }

    handshake("started %d", (int)pid);
    /* task.pid: informational (the agent learns the pid from the handshake), so written after it. */
    char pidtext[32];
    snprintf(pidtext, sizeof pidtext, "%d", (int)pid);
    char *pidfile = path_in(run_dir, "task.pid");
    int pfd = open(pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (pfd >= 0) {
        if (write_all(pfd, pidtext, strlen(pidtext)) < 0)
            fprintf(stderr, "supervisor: cannot write %s: %s\n", pidfile, strerror(errno));
        close(pfd);
    }
    free(pidfile);
    detach_stdio();

    int status = 0;
    int exited = 0;
    long long deadline = -1; /* monotonic ms of the next SIGKILL round, -1: none */
    while (!exited) {
        siginfo_t info;
        int sig;
        if (deadline >= 0) {
            long long left = deadline - monotonic_ms();
            if (left < 0)
                left = 0;
            struct timespec ts = { left / 1000, (left % 1000) * 1000000L };
            sig = sigtimedwait(&waited, &info, &ts);
        } else {
            sig = sigwaitinfo(&waited, &info);
        }
        if (sig < 0) {
            if (errno == EAGAIN && deadline >= 0 && monotonic_ms() >= deadline) {
                /* Grace over: kill everything; retry each second until the main process ends. */
                kill_container(&spec);
                kill(-pid, SIGKILL);
                deadline = monotonic_ms() + 1000;
            }
            continue;
        }
        if (sig == SIGCHLD) {
            for (;;) {
                int st;
                pid_t r = waitpid(-1, &st, WNOHANG);
                if (r <= 0)
                    break;
                if (r == pid) {
                    status = st;
                    exited = 1;
                }
            }
        } else if (sig == SIGTERM && !result.killed) {
            result.killed = 1;
            double grace = kill_grace(&spec);
            kill(-pid, SIGTERM);
            signal_container(&spec, SIGTERM);
            deadline = monotonic_ms() + (long long)(grace * 1000);
        }
        /* SIGINT/SIGHUP: ignored (the supervisor ends with its task, not with a terminal). */
    }

    if (WIFEXITED(status)) {
        result.has_exit = 1;
        result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.has_signal = 1;
        result.signal = WTERMSIG(status);
        result.has_exit = 1;
        result.exit_code = 128 + result.signal;
    }
    finish(&spec, pid, &result);
    return write_status(&result) == 0 ? 0 : 1;
}
