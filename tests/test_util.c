/* The test harness (see test_util.h). */
#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int om_test_passed, om_test_failed;

int om_test_finish(void) {
    printf("%d passed, %d failed\n", om_test_passed, om_test_failed);
    return om_test_failed ? 1 : 0;
}

char *om_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return NULL;
    }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

int om_test_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

const char *om_test_tmpdir(const char *name) {
    static char path[4096];
    char cmd[8400];
    snprintf(path, sizeof path, "%s/%s", OM_TMP_DIR, name);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (system(cmd) != 0) return NULL;
    return path;
}

static void read_all(FILE *f, char *buf, size_t cap) {
    size_t used = 0;
    if (buf && cap) buf[0] = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (buf && used + 1 < cap) {
            size_t take = n < cap - 1 - used ? n : cap - 1 - used;
            memcpy(buf + used, chunk, take);
            used += take;
            buf[used] = 0;
        }
    }
}

int om_test_run(const char *cmd, char *out, size_t out_cap, char *err, size_t err_cap) {
    char errpath[4096], full[16384];
    snprintf(errpath, sizeof errpath, "%s/stderr.%d.txt", OM_TMP_DIR, (int)getpid());
    mkdir(OM_TMP_DIR, 0755);
    snprintf(full, sizeof full, "%s 2>'%s'", cmd, errpath);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    read_all(p, out, out_cap);
    int st = pclose(p);
    FILE *e = fopen(errpath, "rb");
    if (e) {
        read_all(e, err, err_cap);
        fclose(e);
        remove(errpath);
    } else if (err && err_cap) {
        err[0] = 0;
    }
    if (st == -1) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}
