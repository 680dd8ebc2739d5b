/* Small helpers of the native task supervisor: memory, files, time, cgroup.procs. */
#include "supervisor.h"

void die_oom(void)
{
    static const char msg[] = "failed out of memory\n";
    ssize_t w = write(1, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

void list_add(struct list *l, char *item)
{
    if (l->count + 2 > l->capacity) {
        size_t cap = l->capacity ? l->capacity * 2 : 8;
        char **items = realloc(l->items, cap * sizeof *items);
        if (!items)
            die_oom();
        l->items = items;
        l->capacity = cap;
    }
    l->items[l->count++] = item;
    l->items[l->count] = NULL;
}

char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p)
        die_oom();
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)(ts.tv_nsec / 1000000) / 1000.0;
}

long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads a whole (small) file; NULL when it cannot be read. *len gets its size. */
char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        die_oom();
    for (;;) {
        if (n == cap) {
            cap *= 2;
            char *b = realloc(buf, cap + 1);
            if (!b)
                die_oom();
            buf = b;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            free(buf);
            errno = e;
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* The contents of DIR/NAME (malloc'd), or NULL when DIR is NULL or the file cannot be read. */
static char *read_in(const char *dir, const char *name)
{
    if (!dir)
        return NULL;
    char *p = path_in(dir, name);
    char *text = read_file(p, NULL);
    free(p);
    return text;
}

unsigned long long read_ull(const char *dir, const char *name)
{
    char *text = read_in(dir, name);
    if (!text)
        return 0;
    unsigned long long v = strtoull(text, NULL, 10);
    free(text);
    return v;
}

/* The value of a "key value" line of a flat-keyed file (memory.events, cpu.stat, oom_control). */
unsigned long long read_key(const char *dir, const char *name, const char *key)
{
    char *text = read_in(dir, name);
    if (!text)
        return 0;
    unsigned long long v = 0;
    size_t klen = strlen(key);
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
            v = strtoull(line + klen + 1, NULL, 10);
            break;
        }
        line = next ? next + 1 : NULL;
    }
    free(text);
    return v;
}

/* The pids listed in DIR/cgroup.procs (count in *n; NULL when none or unreadable). */
pid_t *cgroup_pids(const char *dir, size_t *n)
{
    *n = 0;
    if (!dir)
        return NULL;
    char *p = path_in(dir, "cgroup.procs");
    char *text = read_file(p, NULL);
    free(p);
    if (!text)
        return NULL;
    size_t cap = 0;
    pid_t *pids = NULL;
    for (char *s = text; *s;) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        if (v > 0) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                pid_t *np = realloc(pids, cap * sizeof *np);
                if (!np)
                    die_oom();
                pids = np;
            }
            pids[(*n)++] = (pid_t)v;
        }
        s = end;
        while (*s == '\n')
            s++;
    }
    free(text);
    return pids;
}

int signal_cgroup(const char *dir, int sig)
{
    size_t n;
    pid_t *pids = cgroup_pids(dir, &n);
    for (size_t i = 0; i < n; i++)
        kill(pids[i], sig);
    free(pids);
    return (int)n;
}

int wait_cgroup_empty(const char *dir, long timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    for (;;) {
        size_t n;
        free(cgroup_pids(dir, &n));
        if (n == 0)
            return 1;
        if (monotonic_ms() >= deadline)
            return 0;
        sleep_ms(2);
    }
}

int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}
