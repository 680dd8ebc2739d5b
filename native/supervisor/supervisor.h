/* Shared declarations of the native task supervisor (see sched-supervisor.c). */
#ifndef SCHED_SUPERVISOR_H
#define SCHED_SUPERVISOR_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX 1024

struct list {
    char **items;
    size_t count;
    size_t capacity;
};

struct spec {
    struct list argv;
    struct list env;
    struct list join;
    struct list remove;
    const char *cwd;
    const char *out;
    const char *err;
    const char *user;
    const char *kind;     /* v1, v2, none */
    const char *freezer;  /* v1 */
    const char *memory;   /* v1 */
    const char *cpuacct;  /* v1 */
    const char *unified;  /* v2 container dir */
    double grace;
    const char *runtime;
    const char *runtime_root;
    const char *container_id;
};

struct result {
    int has_exit;
    int exit_code;
    int has_signal;
    int signal;
    int killed;
    int oom_killed;
    const char *launch_error;
    const char *launch_reason;
    unsigned long long mem_peak;
    unsigned long long mem_limit;
    double cpu_user;
    double cpu_system;
};

/* util.c: memory, files, time, cgroup.procs */
void die_oom(void);
void list_add(struct list *l, char *item);
char *path_in(const char *dir, const char *name);
double now_seconds(void);
long long monotonic_ms(void);
void sleep_ms(long ms);
int write_all(int fd, const char *data, size_t len);
char *read_file(const char *path, size_t *len);
int write_text(const char *path, const char *text);
unsigned long long read_ull(const char *dir, const char *name);
unsigned long long read_key(const char *dir, const char *name, const char *key);
pid_t *cgroup_pids(const char *dir, size_t *n);
int signal_cgroup(const char *dir, int sig);
int wait_cgroup_empty(const char *dir, long timeout_ms);
int exists(const char *path);

/* container.c: killing everything in a container, its usage, removing its cgroups */
void kill_container(const struct spec *s);
void signal_container(const struct spec *s, int sig);
void read_usage(const struct spec *s, struct result *r);
void run_helper(char *const argv[], long timeout_ms);
void remove_cgroups(const struct spec *s);

#endif
