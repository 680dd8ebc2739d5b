/* The task's container as the supervisor handles it: kill everything in it (freeze-kill-thaw on
 * cgroup v1, cgroup.kill on v2), read its usage, run the OCI runtime's delete, remove its cgroups. */
#include "supervisor.h"

static void freeze_v1(const char *freezer, const char *state)
{
    char *p = path_in(freezer, "freezer.state");
    int rc = write_text(p, state);
    (void)rc;
    if (!strcmp(state, "FROZEN")) {
        for (int i = 0; i < 200; i++) {
            char *text = read_file(p, NULL);
            int freezing = text && !strncmp(text, "FREEZING", 8);
            free(text);
            if (!freezing)
                break;
            sleep_ms(1);
        }
    }
    free(p);
}

/* Kills every process of the container and waits (bounded) until it is empty. */
void kill_container(const struct spec *s)
{
    if (!strcmp(s->kind, "v1") && s->freezer && exists(s->freezer)) {
        for (int round = 0; round < 50; round++) {
            size_t n;
            free(cgroup_pids(s->freezer, &n));
            if (n == 0)
                return;
            /* Frozen, nothing can fork between reading the list and killing it. */
            freeze_v1(s->freezer, "FROZEN");
            signal_cgroup(s->freezer, SIGKILL);
            freeze_v1(s->freezer, "THAWED");
            if (wait_cgroup_empty(s->freezer, 200))
                return;
        }
    } else if (!strcmp(s->kind, "v2") && s->unified && exists(s->unified)) {
        char *killfile = path_in(s->unified, "cgroup.kill");
        int have_kill = exists(killfile);
        if (have_kill && write_text(killfile, "1") == 0) {
            free(killfile);
            wait_cgroup_empty(s->unified, 5000);
            return;
        }
        free(killfile);
        char *freeze = path_in(s->unified, "cgroup.freeze");
        for (int round = 0; round < 50; round++) {
            size_t n;
            free(cgroup_pids(s->unified, &n));
            if (n == 0)
                break;
            int rc = write_text(freeze, "1");
            signal_cgroup(s->unified, SIGKILL);
            rc = write_text(freeze, "0");
            (void)rc;
            if (wait_cgroup_empty(s->unified, 200))
                break;
        }
        free(freeze);
    }
}

void signal_container(const struct spec *s, int sig)
{
    if (!strcmp(s->kind, "v1"))
        signal_cgroup(s->freezer, sig);
    else if (!strcmp(s->kind, "v2"))
        signal_cgroup(s->unified, sig);
}

void read_usage(const struct spec *s, struct result *r)
{
    if (!strcmp(s->kind, "v1")) {
        r->mem_peak = read_ull(s->memory, "memory.max_usage_in_bytes");
        unsigned long long limit = read_ull(s->memory, "memory.limit_in_bytes");
        r->mem_limit = limit >= (1ULL << 62) ? 0 : limit;
        r->oom_killed = read_key(s->memory, "memory.oom_control", "oom_kill") > 0;
        /* cpuacct.usage is exact; usage_user/usage_sys are tick-sampled and only give the split. */
        double total = (double)read_ull(s->cpuacct, "cpuacct.usage") / 1e9;
        double user = (double)read_ull(s->cpuacct, "cpuacct.usage_user");
        double sys = (double)read_ull(s->cpuacct, "cpuacct.usage_sys");
        r->cpu_user = user + sys > 0 ? total * user / (user + sys) : total;
        r->cpu_system = user + sys > 0 ? total * sys / (user + sys) : 0;
    } else if (!strcmp(s->kind, "v2")) {
        r->mem_peak = read_ull(s->unified, "memory.peak");
        r->mem_limit = read_ull(s->unified, "memory.max"); /* "max" parses as 0: unlimited */
        r->oom_killed = read_key(s->unified, "memory.events", "oom_kill") > 0;
        r->cpu_user = (double)read_key(s->unified, "cpu.stat", "user_usec") / 1e6;
        r->cpu_system = (double)read_key(s->unified, "cpu.stat", "system_usec") / 1e6;
    }
}

/* Runs a short helper (runc delete) to completion, bounded; its output goes to our log. */
void run_helper(char *const argv[], long timeout_ms)
{
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "supervisor: cannot fork %s: %s\n", argv[0], strerror(errno));
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        execv(argv[0], argv);
        fprintf(stderr, "supervisor: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR))
            return;
        if (monotonic_ms() >= deadline) {
            fprintf(stderr, "supervisor: %s did not finish in %ld ms; killed\n", argv[0], timeout_ms);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return;
        }
        sleep_ms(5);
    }
}

void remove_cgroups(const struct spec *s)
{
    for (size_t i = 0; i < s->remove.count; i++) {
        const char *dir = s->remove.items[i];
        if (!exists(dir))
            continue;
        /* A process may sit in one hierarchy and not in the freezer: kill what is listed. */
        if (signal_cgroup(dir, SIGKILL) > 0)
            wait_cgroup_empty(dir, 2000);
        long long deadline = monotonic_ms() + 2000;
        while (rmdir(dir) < 0 && errno != ENOENT) {
            if (monotonic_ms() >= deadline) {
                fprintf(stderr, "supervisor: cannot remove cgroup %s: %s\n", dir, strerror(errno));
                break;
            }
            sleep_ms(5);
        }
    }
}
